"""What the two pollers share (bridge.Bridge._poller and lean.lean_poller): the directions they
move, which of them a poller watches, and handing a busy one to its own thread."""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Callable, Iterable
from typing import Protocol


class Mover(Protocol):
    """What a poller needs of a direction (bridge.Direction): whose turn it is to move it."""

    own_thread: threading.Event

    def hand_off(self) -> None: ...


def sync_polled(poller: select.poll, registered: set[int],
                movers: Iterable[tuple[int, Mover]]) -> None:
    """Make `poller` watch exactly the descriptors of the movers without a thread of their own;
    `registered` is what it watches now and is kept up to date."""
    for fd, mover in movers:
        wanted = not mover.own_thread.is_set()
        if wanted and fd not in registered:
            poller.register(fd, select.POLLIN)
            registered.add(fd)
        elif not wanted and fd in registered:
            poller.unregister(fd)
            registered.discard(fd)


def hand_off_if_busy(mover: Mover, since: float, window: float,
                     prepare: Callable[[], None] | None = None) -> tuple[bool, float]:
    """After a count of packets started at `since`: hand `mover` to its thread (after
    `prepare()`) if they came in less than `window` seconds. Returns (handed off, the next
    count's start)."""
    now = time.monotonic()
    if now - since < window:
        if prepare is not None:
            prepare()
        mover.hand_off()
        return True, now
    return False, now
