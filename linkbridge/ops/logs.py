"""Log output: human lines (`linkbridge: ...`) or one JSON object per line; progress lines."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from typing import TextIO

FORMATS = ("text", "json")
HUMAN_FORMAT = "linkbridge: %(message)s"


class JsonFormatter(logging.Formatter):
    """`{"time": ..., "level": ..., "logger": ..., "message": ...}` plus the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "time": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
            "thread": record.threadName,
        }
        if record.exc_info:
            document["traceback"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)


OWN_LOGGERS = "linkbridge"  # linkbridge.* and the plugins' linkbridge_* loggers


class LibraryQuiet(logging.Filter):
    """Passes linkbridge's (and its plugins') records, and only warnings or worse of libraries
    (pyroute2 logs every netlink message at debug level)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.startswith(OWN_LOGGERS) or record.levelno >= logging.WARNING


def setup_logging(level: int, log_format: str = "text", stream: TextIO | None = None,
                  libraries: bool = False) -> None:
    """Send log records to `stream` (stderr) as human lines or JSON lines; libraries' debug and
    info records only with `libraries` (`-vv`)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(HUMAN_FORMAT)
    handler.setFormatter(formatter)
    if not libraries:
        handler.addFilter(LibraryQuiet())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


class Progress:
    """Progress lines for long runs (lab transfers, benchmarks), at most one per `every` s.

    `update(done)` logs `label: 42% (4200/10000 units), 3.1 s, about 4 s left` when enough time
    passed since the last line; `finish()` logs the final line. The clock is passed in.
    """

    def __init__(self, label: str, total: int, unit: str = "", every: float = 2.0,
                 clock: Callable[[], float] = time.monotonic,
                 logger: logging.Logger | None = None) -> None:
        self.label = label
        self.total = max(1, total)
        self.unit = f" {unit}" if unit else ""
        self.every = every
        self._clock = clock
        self._log = logger or logging.getLogger("linkbridge")
        self._start = clock()
        self._last = self._start
        self.done = 0

    def line(self, now: float) -> str:
        elapsed = now - self._start
        percent = 100.0 * self.done / self.total
        text = (f"{self.label}: {percent:.0f}% ({self.done}/{self.total}{self.unit}), "
                f"{elapsed:.1f} s")
        if 0 < self.done < self.total and elapsed > 0:
            left = elapsed * (self.total - self.done) / self.done
            text += f", about {left:.0f} s left"
        return text

    def update(self, done: int) -> None:
        self.done = done
        now = self._clock()
        if now - self._last >= self.every:
            self._last = now
            self._log.info("%s", self.line(now))

    def finish(self) -> None:
        self._log.info("%s", self.line(self._clock()))
