"""The rate limiter and the bounded hold queue: when each packet leaves, and tail drop."""

from __future__ import annotations

import heapq

from linkbridge_sim.mahimahi import TraceRate


class RateQueue:
    """Serialises packets at `rate` bits/s after their delay, holding at most `limit` packets.

    A packet offered at `now` with delay `d` starts transmission at max(now + d, end of the
    previous transmission) and leaves (size + overhead) * 8 / rate seconds later, as netem
    does. With a Mahimahi `trace` instead of a rate it leaves when the trace's delivery
    opportunities have carried it (mahimahi.py). Without either it leaves at now + d. A packet
    arriving while `limit` packets are still held (delayed or waiting) is dropped (tail drop).
    """

    def __init__(self, rate: float | None, overhead: int, limit: int,
                 trace: TraceRate | None = None) -> None:
        self.rate = rate
        self.trace = trace
        self.overhead = overhead
        self.limit = limit
        self.busy_until = 0.0
        self._held: list[float] = []  # release times of packets not yet released

    def transmission_time(self, size: int) -> float:
        if not self.rate:
            return 0.0
        return max(0, size + self.overhead) * 8.0 / self.rate

    def held(self, now: float) -> int:
        while self._held and self._held[0] <= now:
            heapq.heappop(self._held)
        return len(self._held)

    def schedule(self, size: int, delay: float, now: float) -> float | None:
        """The release time of a packet, or None when the queue is full (tail drop)."""
        if self.held(now) >= self.limit:
            return None
        ready = now + delay
        if self.rate:
            ready = max(ready, self.busy_until) + self.transmission_time(size)
            self.busy_until = ready
        elif self.trace is not None:
            ready = self.trace.finish(max(0, size + self.overhead), ready)
        heapq.heappush(self._held, ready)
        return ready
