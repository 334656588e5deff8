"""CoDel active queue management (RFC 8289), decided as each packet leaves its queue. Pure
logic: the dequeue time, the packet's sojourn time and the bytes still queued are passed in.

A queue keeps one `CoDel` and asks `drop()` about every packet it dequeues, in order. While the
sojourn time has stayed at or above `target` for a whole `interval` (and more than one MTU is
queued), CoDel enters its dropping state and drops that packet, then one at each of the times
the control law gives, `interval / sqrt(count)` apart, count growing with each drop, until a
packet's sojourn falls below `target`. Re-entering the dropping state soon after leaving it
(within 16 intervals) starts from the drop rate it had reached (RFC 8289 section 5.5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_TARGET = 0.005
DEFAULT_INTERVAL = 0.100
DEFAULT_MTU = 1500  # bytes: a queue holding no more than this is never dropped from
REENTRY_INTERVALS = 16


@dataclass
class CoDel:
    """One queue's CoDel state (RFC 8289 section 5's variables)."""

    target: float = DEFAULT_TARGET
    interval: float = DEFAULT_INTERVAL
    mtu: int = DEFAULT_MTU
    first_above_time: float | None = None
    drop_next: float = 0.0
    count: int = 0
    lastcount: int = 0
    dropping: bool = False
    drops: int = 0
    _law_due: bool = False  # a drop in the dropping state: the next packet moves drop_next

    def __post_init__(self) -> None:
        if self.target <= 0 or self.interval <= 0:
            raise ValueError("CoDel's target and interval must be > 0")

    def _ok_to_drop(self, now: float, sojourn: float, backlog: int | None) -> bool:
        """The sojourn time has been above target for an interval (RFC's dodequeue)."""
        if sojourn < self.target or (backlog is not None and backlog <= self.mtu):
            self.first_above_time = None
            return False
        if self.first_above_time is None:
            self.first_above_time = now + self.interval
            return False
        return now >= self.first_above_time

    def _control_law(self, t: float) -> float:
        return t + self.interval / math.sqrt(self.count)

    def drop(self, now: float, sojourn: float, backlog: int | None = None) -> bool:
        """Whether to drop the packet dequeued at `now` after `sojourn` seconds queued, with
        `backlog` bytes still queued behind it (None: unknown, taken as more than one MTU).
        After a drop the queue asks at once about its next packet (RFC 8289's loop)."""
        ok_to_drop = self._ok_to_drop(now, sojourn, backlog)
        if self.dropping:
            if not ok_to_drop:
                self.dropping = self._law_due = False
                return False
            if self._law_due:  # the packet after a drop may be dropped too: schedule the next
                self.drop_next = self._control_law(self.drop_next)
                self._law_due = False
            if now < self.drop_next:
                return False
            self.count += 1
            self._law_due = True
            self.drops += 1
            return True
        if not ok_to_drop:
            return False
        self.dropping = True
        delta = self.count - self.lastcount
        recent = now - self.drop_next < REENTRY_INTERVALS * self.interval
        self.count = delta if delta > 1 and recent else 1
        self.lastcount = self.count
        self.drop_next = self._control_law(now)
        self.drops += 1
        return True

    def idle(self) -> None:
        """The queue ran empty: the sojourn time is below target again (RFC's dodequeue)."""
        self.first_above_time = None
        self.dropping = self._law_due = False
