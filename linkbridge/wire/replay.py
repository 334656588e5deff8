"""The anti-replay window of the encrypt layer: the sliding window of RFC 6479 (a bitmap of the
last WINDOW counters below the highest one seen), kept as one Python integer. Pure."""

from __future__ import annotations

WINDOW = 2048  # counters below the highest still accepted once each (reordering tolerated)
_MASK = (1 << WINDOW) - 1


class ReplayWindow:
    """Which message counters of one session were accepted.

    `fresh(counter)` is the cheap check before authentication; `mark(counter)` records a
    counter once its message authenticated (`accept` does both).
    """

    def __init__(self) -> None:
        self.highest = -1
        self._seen = 0  # bit i: counter highest - i was accepted

    def fresh(self, counter: int) -> bool:
        """Whether `counter` is new: above the highest, or inside the window and not seen."""
        if counter > self.highest:
            return True
        behind = self.highest - counter
        return behind < WINDOW and not self._seen >> behind & 1

    def accept(self, counter: int) -> bool:
        """Record `counter`; False (and nothing recorded) when it is a replay or too old."""
        if not self.fresh(counter):
            return False
        self.mark(counter)
        return True

    def mark(self, counter: int) -> None:
        """Record `counter`, which fresh() just called new (the caller holds the state)."""
        if counter > self.highest:
            ahead = counter - self.highest
            self._seen = (self._seen << ahead | 1) & _MASK if ahead < WINDOW else 1
            self.highest = counter
        else:
            self._seen |= 1 << (self.highest - counter)

    def mark_run(self, low: int, high: int) -> None:
        """Record every counter from `low` to `high`, all above the highest seen (what a
        batch of frames in order gives): one update of the bitmap for the run."""
        ahead = high - self.highest
        run = (1 << min(high - low + 1, WINDOW)) - 1
        self._seen = (self._seen << ahead | run) & _MASK if ahead < WINDOW else run & _MASK
        self.highest = high
