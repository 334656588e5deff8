"""Link liveness: `up`, `stale` or `down` from the time since the last frame came in. Pure:
the caller passes the link's received-frame count and the time.

A link is `up` while frames arrive, `stale` once none came for `stale_after` seconds, `down`
after `down_after` seconds (and before the first frame). Keepalives (`--keepalive K`) make
an idle but live peer send a frame every K seconds, so its silence means it is gone: the
default thresholds are then 1.5 K and 2.25 K. Without keepalives the state follows traffic.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

STALE_KEEPALIVES = 1.5  # keepalive intervals of silence before a link is stale
DOWN_KEEPALIVES = 2.25  # ... and before it is down (a killed peer is seen within 3 intervals)
DEFAULT_DOWN_AFTER = 120.0  # seconds, without keepalives


class LinkState(enum.StrEnum):
    UP = "up"
    STALE = "stale"
    DOWN = "down"


@dataclass(frozen=True)
class Thresholds:
    """Seconds without a received frame after which a link is stale, then down."""

    stale_after: float
    down_after: float

    @classmethod
    def choose(cls, keepalive: float | None, link_timeout: float | None) -> Thresholds:
        """From `--keepalive` and `--link-timeout` (the down threshold; stale at 60% of it)."""
        if link_timeout is not None:
            return cls(0.6 * link_timeout, link_timeout)
        if keepalive is not None:
            return cls(STALE_KEEPALIVES * keepalive, DOWN_KEEPALIVES * keepalive)
        return cls(0.6 * DEFAULT_DOWN_AFTER, DEFAULT_DOWN_AFTER)


@dataclass(frozen=True)
class Change:
    """A state change and why it happened, for the log, the hooks and systemd."""

    old: LinkState
    new: LinkState
    reason: str


class Liveness:
    """The state of one link, fed its received-frame counter now and then."""

    def __init__(self, thresholds: Thresholds, now: float) -> None:
        self.thresholds = thresholds
        self.state = LinkState.DOWN
        self.since = now  # when the state last changed
        self.last_frame: float | None = None  # when a frame was last seen arriving
        self._seen = 0

    def observe(self, rx_frames: int, now: float) -> Change | None:
        """Update from the link's count of received frames; the change, if the state changed."""
        if rx_frames != self._seen:
            self._seen = rx_frames
            self.last_frame = now
        if self.last_frame is None:
            return None  # still down: nothing heard yet
        silent = now - self.last_frame
        if silent >= self.thresholds.down_after:
            new, reason = LinkState.DOWN, f"no frame for {silent:.1f} s"
        elif silent >= self.thresholds.stale_after:
            new, reason = LinkState.STALE, f"no frame for {silent:.1f} s"
        else:
            new, reason = LinkState.UP, "frames arriving"
        if new == self.state:
            return None
        change = Change(self.state, new, reason)
        self.state, self.since = new, now
        return change

    def silent_for(self, now: float) -> float | None:
        """Seconds since the last frame came in; None before the first."""
        return None if self.last_frame is None else max(0.0, now - self.last_frame)


def keepalive_due(last_sent: float, interval: float, now: float) -> bool:
    """Whether a sender that sent nothing since `last_sent` owes its peer a keepalive."""
    return now - last_sent >= interval
