"""Waiting in tests for a condition that other threads or processes bring about."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def wait_for(condition: Callable[[], object], timeout: float,
             what: str | Callable[[], str] = "the condition", interval: float = 0.05) -> float:
    """Poll `condition` every `interval` seconds until it is true; the seconds that took.
    After `timeout` seconds the test fails, naming `what` (a callable: worded at that time)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            pytest.fail(f"{what() if callable(what) else what} not within {timeout} s")
        time.sleep(interval)
    return time.monotonic() - started


def settled(read: Callable[[], T], quiet: float, timeout: float, what: str) -> T:
    """What `read()` gives once two reads `quiet` seconds apart agree (counters that stopped
    moving: nothing in flight); the test fails, naming `what`, when none did within `timeout`
    seconds."""
    deadline = time.monotonic() + timeout
    last = read()
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = read()
        if now == last:
            return now
        last = now
    pytest.fail(f"{what} never went quiet for {quiet:g} s in {timeout:g} s")
