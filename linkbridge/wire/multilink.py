"""Several links under one tunnel (docs/multilink.md): the link probe frame, the receiver's
de-duplication window and the policies that pick the links a frame goes out on. Pure: the
caller passes each link's received-frame count and the time.

Every frame on a link of a multi-link tunnel is an extension frame of subtype LINK_PROBE
(wire/frames.py): after the two extension bytes, one byte of kind, then for DATA a 4-byte
sequence number (big-endian, one counter for all links, wrapping) and the frame of the layers
above. A PROBE (no body) goes out on every link every probe interval, so that each link's
liveness (wire/liveness.py) follows its own frames, and a link that is down is probed until it
comes back.
"""

from __future__ import annotations

import enum
import struct
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from linkbridge.wire import drops
from linkbridge.wire.frames import EXTENSION_HEADER, LINK_PROBE, extension_header
from linkbridge.wire.liveness import Change, LinkState, Liveness, Thresholds

PROBE = 0x00
DATA = 0x01
_HEADER = extension_header(LINK_PROBE)
_SEQ = struct.Struct("!I")
PROBE_FRAME = _HEADER + bytes((PROBE,))
DATA_HEADER = EXTENSION_HEADER + 1 + _SEQ.size  # bytes the layer adds to each frame: 7
SEQ_SPACE = 1 << 32
REMEMBERED = 16384  # data frames the receiver remembers, to drop a later copy of one
DEFAULT_PROBE_INTERVAL = 1.0  # seconds, without --keepalive
DEFAULT_HOLD_TIME = 10.0  # seconds a better link must stay up before failover returns to it


class Policy(enum.StrEnum):
    FAILOVER = "failover"
    DUPLICATE = "duplicate"


POLICIES = tuple(Policy)


def data_frame(seq: int, frame: bytes) -> bytes:
    """`frame` of the layers above, behind the header with sequence number `seq`."""
    return _HEADER + bytes((DATA,)) + _SEQ.pack(seq % SEQ_SPACE) + frame


@dataclass(frozen=True)
class Parsed:
    """A frame read from one link: `seq` None for a probe, else the data frame's."""

    seq: int | None
    payload: bytes


def parse(frame: bytes) -> Parsed | str:
    """The probe or data frame `frame`, or the drop reason for a malformed one. A frame of
    another type (a peer with one link sends frames bare) comes back whole, seq None."""
    if frame[:EXTENSION_HEADER] != _HEADER:
        return Parsed(None, frame)
    if len(frame) == len(PROBE_FRAME) and frame[EXTENSION_HEADER] == PROBE:
        return Parsed(None, b"")
    if len(frame) <= DATA_HEADER or frame[EXTENSION_HEADER] != DATA:
        return drops.LINK_PROBE_MALFORMED
    return Parsed(_SEQ.unpack_from(frame, EXTENSION_HEADER + 1)[0], frame[DATA_HEADER:])


class Dedup:
    """Which data frames were delivered, by the whole frame (its sequence number makes each
    frame the sender sent distinct): a copy of one of the last `remembered` is DUPLICATE.

    Keyed by the frame rather than by a window over the sequence numbers, which travel
    unauthenticated below the encrypt layer: a forged frame can then only ever stand for
    itself, never move a window and so turn later genuine frames away. Bounded: the keys of
    the last `remembered` frames (a flood of forgeries pushes them out: a late genuine copy
    then reaches the encrypt layer, whose replay window refuses it)."""

    def __init__(self, remembered: int = REMEMBERED) -> None:
        self._order: deque[int] = deque(maxlen=remembered)
        self._keys: set[int] = set()

    def accept(self, frame: bytes) -> str | None:
        """None when `frame` is new (now remembered), else the drop reason."""
        key = hash(frame)
        if key in self._keys:
            return drops.DUPLICATE
        order = self._order
        if len(order) == order.maxlen:
            self._keys.discard(order[0])
        order.append(key)
        self._keys.add(key)
        return None


class LinkTable:
    """The liveness of each link and the policy's choice of links for the next frame.

    Failover: the first usable link in the order given (usable: not down; one lost probe
    makes a link stale, not down, so it is no failover), except that a link that went down
    is used again only once it has stayed usable for `hold_time` seconds, so a flapping
    link never pulls traffic back and forth. Duplicate: every usable link. With no link
    usable (at the start, or all cut) a frame goes out on every link.
    """

    def __init__(self, count: int, policy: Policy, thresholds: Thresholds, hold_time: float,
                 now: float) -> None:
        if count < 1:
            raise ValueError("a link table needs a link")
        self.policy = policy
        self.hold_time = hold_time
        self.liveness = [Liveness(thresholds, now) for _ in range(count)]
        self.usable_since: list[float | None] = [None] * count
        self.returning = [False] * count  # went down once: its return waits for hold_time
        self.active: int | None = None  # failover's link, None before one is usable
        self.switches = 0  # times failover moved traffic to another link

    def observe(self, rx_frames: Sequence[int], now: float) -> list[tuple[int, Change]]:
        """Update each link from its count of received frames; the changes, by link index."""
        changes = []
        for index, (liveness, count) in enumerate(zip(self.liveness, rx_frames, strict=True)):
            change = liveness.observe(count, now)
            if change is None:
                continue
            changes.append((index, change))
            if change.new == LinkState.DOWN:
                self.usable_since[index] = None
                self.returning[index] = True
            elif change.old == LinkState.DOWN:
                self.usable_since[index] = now
        return changes

    def usable(self, index: int) -> bool:
        return self.usable_since[index] is not None

    def _trusted(self, index: int, now: float) -> bool:
        since = self.usable_since[index]
        return since is not None and (not self.returning[index]
                                      or now - since >= self.hold_time)

    def targets(self, now: float) -> range | tuple[int, ...]:
        """The links the next frame goes out on."""
        count = len(self.liveness)
        if self.policy == Policy.DUPLICATE:
            usable = tuple(i for i in range(count) if self.usable(i))
            return usable or range(count)
        active = self.active
        candidates = range(count if active is None or not self.usable(active) else active)
        best = next((i for i in candidates if self._trusted(i, now)), None)
        if best is None and (active is None or not self.usable(active)):
            best = next((i for i in range(count) if self.usable(i)), None)
        if best is not None and best != active:
            self.switches += active is not None
            self.active = active = best
        return range(count) if active is None or not self.usable(active) else (active,)
