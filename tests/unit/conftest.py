"""The unit tier runs no process and never sleeps: while a unit test runs, starting a process or
calling time.sleep() from its thread fails the test with what to do instead (the imports are
checked without running anything by tests/unit/test_unit_tier.py)."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

ADVICE = ("the unit tier runs no subprocess and never sleeps: move the test to "
          "tests/integration, or pass the code a clock or a sleep of its own")


def refused(what: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """`original`, but failing the test when called from the test's own (main) thread; other
    threads (pytest-xdist's) are left alone."""
    def guard(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread() is threading.main_thread():
            pytest.fail(f"{what} in a unit test: {ADVICE}", pytrace=True)
        return original(*args, **kwargs)
    return guard


@pytest.fixture(autouse=True)
def no_processes_no_sleeps(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(time, "sleep", refused("time.sleep()", time.sleep))
    monkeypatch.setattr(subprocess.Popen, "_execute_child",
                        refused("starting a process (subprocess)", subprocess.Popen._execute_child))
    monkeypatch.setattr(os, "fork", refused("os.fork()", os.fork))
    monkeypatch.setattr(os, "posix_spawn", refused("os.posix_spawn()", os.posix_spawn))
    monkeypatch.setattr(os, "system", refused("os.system()", os.system))
    yield
