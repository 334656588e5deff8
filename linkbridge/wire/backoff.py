"""When to try again after a failure: exponential backoff, without I/O or a clock of its own.

The caller passes the time in (`now`, from whatever clock it uses), so a test drives it with
plain numbers; nothing here sleeps.
"""

from __future__ import annotations


class Backoff:
    """Retry times for something that fails and is tried again: the first retry `first`
    seconds after a failure, each later one `factor` times as long, never more than `limit`;
    `reset()` after a success starts again from `first`."""

    def __init__(self, first: float, limit: float, factor: float = 2.0) -> None:
        if not 0 < first <= limit or factor < 1:
            raise ValueError("backoff needs 0 < first <= limit and factor >= 1")
        self.first, self.limit, self.factor = first, limit, factor
        self._delay = first
        self.retry_at = 0.0

    def failed(self, now: float) -> float:
        """A failure at `now`: return the delay before the next try (and set `retry_at`)."""
        delay = self._delay
        self.retry_at = now + delay
        self._delay = min(delay * self.factor, self.limit)
        return delay

    def wait(self, now: float) -> float:
        """Seconds from `now` until the next try is due (0: due now)."""
        return max(0.0, self.retry_at - now)

    def reset(self) -> None:
        """A success: the next failure waits `first` again."""
        self._delay = self.first
        self.retry_at = 0.0
