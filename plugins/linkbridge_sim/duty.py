"""A duty-cycle limit over a sliding window (ETSI EN 300 220 counts 1 hour). Pure logic."""

from __future__ import annotations

from collections import deque


class DutyCycle:
    """One sender's on-air history and the limit `share` of any `window` seconds.

    The airtime of every window of `window` seconds stays at or below `share * window`:
    `earliest()` gives the first start time at which a transmission of a given length keeps that
    true, `record()` adds a transmission. Only the worst window needs checking: the one ending
    when the new transmission ends (moving it earlier adds at most as much old airtime as it
    removes of the new one).
    """

    def __init__(self, share: float, window: float) -> None:
        if not 0.0 < share <= 1.0 or window <= 0.0:
            raise ValueError("a duty cycle needs 0 < share <= 100% and a window > 0")
        self.share = share
        self.window = window
        self.budget = share * window
        self._history: deque[tuple[float, float]] = deque()  # (start, end), in order
        self.peak = 0.0  # the most airtime seen in one window (the window ending at a tx end)

    def fits(self, airtime: float) -> bool:
        """Whether a transmission this long can ever be sent (within one window's budget)."""
        return airtime <= self.budget * (1 + 1e-12)

    def used(self, start: float, end: float) -> float:
        """Airtime recorded within [start, end]."""
        return sum(max(0.0, min(e, end) - max(s, start)) for s, e in self._history)

    def earliest(self, airtime: float, now: float) -> float:
        """The first start >= now for a transmission of `airtime` seconds within the limit
        (assumes fits(airtime))."""
        allowed = self.budget - airtime
        start = now
        if self.used(now + airtime - self.window, now) <= allowed + 1e-12:
            return start
        # Slide the window's left edge L forward past old airtime until what is left fits;
        # the used airtime right of L is piecewise linear and non-increasing in L.
        after = self.used(now + airtime - self.window, now)
        left = now + airtime - self.window
        for s, e in self._history:
            if e <= left:
                continue
            begin = max(s, left)
            if after - (e - begin) <= allowed + 1e-12:
                left = begin + (after - allowed)
                break
            after -= e - begin
            left = e
        return max(now, left + self.window - airtime)

    def record(self, start: float, end: float) -> None:
        """Add a transmission on air from `start` to `end` (in time order)."""
        self._history.append((start, end))
        while self._history and self._history[0][1] <= end - self.window:
            self._history.popleft()
        self.peak = max(self.peak, self.used(end - self.window, end))
