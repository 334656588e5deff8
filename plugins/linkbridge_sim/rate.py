"""The rate limiter and the bounded hold queue: when each packet leaves, and tail drop."""

from __future__ import annotations

import heapq

from linkbridge.plugin import drops
from linkbridge_sim.codel import CoDel
from linkbridge_sim.mahimahi import TraceRate

CODEL = "codel"  # the drop reason of a packet CoDel dropped as it left the queue


class RateQueue:
    """Serialises packets at `rate` bits/s after their delay, holding at most `limit` packets.

    A packet offered at `now` with delay `d` starts transmission at max(now + d, end of the
    previous transmission) and leaves (size + overhead) * 8 / rate seconds later, as netem
    does. With a Mahimahi `trace` instead of a rate it leaves when the trace's delivery
    opportunities have carried it (mahimahi.py). Without either it leaves at now + d. A packet
    arriving while `limit` packets (or with `limit_bytes`, that many bytes) are still held
    (delayed or waiting) is dropped (tail drop). With `codel` (target, interval) and a rate,
    CoDel (codel.py) decides about each packet at its dequeue, the start of its transmission,
    which is known when it is scheduled; a packet it drops takes no transmission time. The
    bytes that will be queued behind it then are not known yet: the RFC's exemption of a queue
    holding less than one MTU does not apply.
    """

    def __init__(self, rate: float | None, overhead: int, limit: int,
                 trace: TraceRate | None = None, limit_bytes: int | None = None,
                 codel: tuple[float, float] | None = None) -> None:
        self.rate = rate
        self.trace = trace
        self.overhead = overhead
        self.limit = limit
        self.limit_bytes = limit_bytes
        self.codel = CoDel(*codel) if codel and rate else None
        self.busy_until = 0.0
        self._held: list[tuple[float, int]] = []  # (release time, size) of packets held
        self._held_bytes = 0

    def transmission_time(self, size: int) -> float:
        if not self.rate:
            return 0.0
        return max(0, size + self.overhead) * 8.0 / self.rate

    def held(self, now: float) -> int:
        while self._held and self._held[0][0] <= now:
            self._held_bytes -= heapq.heappop(self._held)[1]
        return len(self._held)

    def schedule(self, size: int, delay: float, now: float) -> float | str:
        """The release time of a packet, or why it is dropped: `queue_full` (tail drop),
        `codel`."""
        if self.held(now) >= self.limit or (
                self.limit_bytes is not None and self._held_bytes + size > self.limit_bytes):
            return drops.QUEUE_FULL
        ready = now + delay
        if self.rate:
            start = max(ready, self.busy_until)
            if self.codel is not None and self.codel.drop(start, start - ready):
                heapq.heappush(self._held, (start, size))
                self._held_bytes += size
                return CODEL
            ready = start + self.transmission_time(size)
            self.busy_until = ready
        elif self.trace is not None:
            ready = self.trace.finish(max(0, size + self.overhead), ready)
        if ready <= now:
            return ready  # leaves at once: never held (the lossless, undelayed fast path)
        heapq.heappush(self._held, (ready, size))
        self._held_bytes += size
        return ready
