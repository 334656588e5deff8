"""Trace-driven rate: Mahimahi's packet-delivery traces (mm-link). Pure logic.

A trace is text, one line per delivery opportunity: the millisecond, counted from the start,
at which the link can deliver MAHIMAHI_MTU bytes. Several lines may name the same millisecond.
The trace loops with a period of its last timestamp.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

MAHIMAHI_MTU = 1504  # bytes per delivery opportunity, as in Mahimahi


def parse_trace(text: str) -> tuple[int, ...]:
    """The opportunity timestamps (ms) of a trace; ValueError names the first bad line."""
    stamps: list[int] = []
    for number, line in enumerate(text.splitlines(), 1):
        item = line.strip()
        if not item:
            continue
        if not item.isdigit():
            raise ValueError(f"line {number}: {item[:20]!r} is not a whole number of ms")
        stamp = int(item)
        if stamps and stamp < stamps[-1]:
            raise ValueError(f"line {number}: {stamp} ms comes before {stamps[-1]} ms")
        stamps.append(stamp)
    if not stamps or stamps[-1] == 0:
        raise ValueError("a trace needs at least one opportunity after 0 ms")
    return tuple(stamps)


def trace_mean_rate(stamps: Sequence[int] | None) -> float | None:
    """A trace's mean capacity in bit/s (None without a trace)."""
    if not stamps:
        return None
    return len(stamps) * MAHIMAHI_MTU * 8 / (stamps[-1] / 1000)


class TraceRate:
    """When packets finish crossing a link that delivers MAHIMAHI_MTU bytes per opportunity.

    Time starts at `origin` (the first packet's arrival if not given). Packets leave in order;
    a packet takes bytes from each opportunity at or after the time it is ready, the rest of
    a partly used opportunity stays for the next packet (a packet may use parts of several
    opportunities), and an opportunity no packet is waiting for is lost, as in Mahimahi.
    """

    def __init__(self, stamps: Sequence[int], origin: float | None = None) -> None:
        self.stamps = [s / 1000.0 for s in stamps]
        self.period = self.stamps[-1]
        self.origin = origin
        self._next = 0  # absolute number of the next opportunity with bytes left
        self._used = 0  # bytes of it already taken

    def time_of(self, index: int) -> float:
        """Time of opportunity number `index` (counting across loops of the trace)."""
        loops, slot = divmod(index, len(self.stamps))
        return (self.origin or 0.0) + loops * self.period + self.stamps[slot]

    def _first_at_or_after(self, at: float) -> int:
        offset = at - (self.origin or 0.0)
        loops = max(0, int(offset // self.period))
        slot = bisect.bisect_left(self.stamps, offset - loops * self.period - 1e-12)
        return loops * len(self.stamps) + slot

    def finish(self, size: int, ready: float) -> float:
        """The time a `size`-byte packet ready at `ready` has been delivered whole."""
        if self.origin is None:
            self.origin = ready
        if self.time_of(self._next) < ready:
            self._next, self._used = self._first_at_or_after(ready), 0
        left = max(size, 1)  # an empty packet still needs an opportunity
        while True:
            take = min(left, MAHIMAHI_MTU - self._used)
            left -= take
            self._used += take
            done = self.time_of(self._next)
            if self._used == MAHIMAHI_MTU:
                self._next, self._used = self._next + 1, 0
            if left == 0:
                return done

    def capacity(self, start: float, end: float) -> int:
        """Bytes the trace can deliver in [start, end) (for tests and reports)."""
        first, last = self._first_at_or_after(start), self._first_at_or_after(end)
        return (last - first) * MAHIMAHI_MTU
