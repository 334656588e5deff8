"""Log formats and the progress helper."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from linkbridge.ops.logs import JsonFormatter, Progress, setup_logging


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_one_object_per_record() -> None:
    stream = io.StringIO()
    setup_logging(logging.INFO, "json", stream)
    log = logging.getLogger("linkbridge")
    log.info("lb0 up: mtu %d", 1400)
    log.debug("hidden")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = map(json.loads, lines)
    assert first["message"] == "lb0 up: mtu 1400"
    assert first["level"] == "info"
    assert first["logger"] == "linkbridge"
    assert second["level"] == "error"
    assert "ValueError: boom" in second["traceback"]


def test_text_format_is_the_human_line() -> None:
    stream = io.StringIO()
    setup_logging(logging.WARNING, "text", stream)
    logging.getLogger("linkbridge").warning("careful")
    logging.getLogger("linkbridge").info("quiet")
    assert stream.getvalue() == "linkbridge: careful\n"


def test_json_formatter_survives_odd_arguments() -> None:
    record = logging.LogRecord("linkbridge", logging.INFO, __file__, 1, "%s", (object(),), None)
    assert json.loads(JsonFormatter().format(record))["message"].startswith("<object")


def test_progress_rate_limited_with_estimate() -> None:
    now = [0.0]
    stream = io.StringIO()
    setup_logging(logging.INFO, "text", stream)
    progress = Progress("transfer", 1000, unit="bytes", every=1.0, clock=lambda: now[0])
    for step in range(1, 11):
        now[0] = step * 0.25
        progress.update(step * 100)
    progress.finish()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "linkbridge: transfer: 40% (400/1000 bytes), 1.0 s, about 2 s left"
    assert lines[1] == "linkbridge: transfer: 80% (800/1000 bytes), 2.0 s, about 0 s left"
    assert lines[-1] == "linkbridge: transfer: 100% (1000/1000 bytes), 2.5 s"
    assert len(lines) == 3
