"""Running the KISS hub (hub.py, `python -m linkbridge_kiss.hub`) for `lab --stations N
--link kiss:?mode=...`: in a directory of its own, named after the lab, and asking it for its
counters. Kept apart from hub.py so that the link does not import the module the hub runs as.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from typing import Any

from linkbridge.plugin import LinkError
from linkbridge.plugin.lab import lab_helper

STATS_FILE = "stats.json"
PID_FILE = "hub.pid"
STATS_TIMEOUT = 5.0  # seconds the lab waits for the hub's counters


def hub_directory(lab: str) -> str:
    """Where the hub of the lab whose first host is `lab` keeps its ptys and files."""
    return os.path.join(tempfile.gettempdir(), f"lb-kiss-hub-{lab}")


@contextlib.contextmanager
def lab_hub(directory: str, names: Sequence[str], baud: int | None) -> Iterator[list[str]]:
    """Run a hub in `directory` (made afresh, removed on exit) for stations `names`; yield
    their pty paths."""
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    rate = ["--baud", str(baud)] if baud else []
    try:
        with lab_helper([sys.executable, "-m", "linkbridge_kiss.hub", "--dir", directory,
                         *rate, *names], "KISS hub"):
            yield [os.path.join(directory, name) for name in names]
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def hub_stats(directory: str) -> dict[str, dict[str, Any]]:
    """The counters of the hub running in `directory`, per station (it writes them when
    asked with SIGUSR1)."""
    path = os.path.join(directory, STATS_FILE)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    try:
        with open(os.path.join(directory, PID_FILE)) as pid:
            os.kill(int(pid.read()), signal.SIGUSR1)
    except (OSError, ValueError) as exc:
        raise LinkError(f"the lab's KISS hub in {directory} is not running: {exc}") from None
    deadline = time.monotonic() + STATS_TIMEOUT
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise LinkError(f"the lab's KISS hub in {directory} did not write its counters")
        time.sleep(0.02)
    with open(path) as stats:
        counters: dict[str, dict[str, Any]] = json.load(stats)
    return counters
