"""What keeps a handshake flood off the expensive part of the encrypt layer (docs/security.md,
"Handshakes under attack"): token buckets, and a memory of the handshake messages seen lately
so that a replayed one costs a dictionary look-up. Pure: the time is passed in.
"""

from __future__ import annotations

from collections import OrderedDict

RECENT_LIMIT = 4096  # handshake messages remembered (about 0.5 MB at most)


class TokenBucket:
    """`burst` at once, then `rate` per second: take(now) says whether one more may pass."""

    def __init__(self, burst: float, rate: float) -> None:
        self.burst = burst
        self.rate = rate
        self._tokens = burst
        self._at: float | None = None

    def take(self, now: float) -> bool:
        if self._at is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class RecentMessages:
    """The last RECENT_LIMIT handshake messages that carried a valid mac1: a legitimate side
    never sends one twice (each has a fresh ephemeral key), so a copy is a replay."""

    def __init__(self, limit: int = RECENT_LIMIT) -> None:
        self._limit = limit
        self._seen: OrderedDict[bytes, None] = OrderedDict()

    def __contains__(self, message: bytes) -> bool:
        return message in self._seen

    def add(self, message: bytes) -> None:
        self._seen[message] = None
        self._seen.move_to_end(message)
        if len(self._seen) > self._limit:
            self._seen.popitem(last=False)

    def __len__(self) -> int:
        return len(self._seen)
