"""Several links under one tunnel (docs/multilink.md): the link probe frame, the receiver's
de-duplication window and the policies that pick the links a frame goes out on. Pure: the
caller passes each link's received-frame count and the time.

Every frame on a link of a multi-link tunnel is an extension frame of subtype LINK_PROBE
(wire/frames.py): after the two extension bytes, one byte of kind, then for DATA a 4-byte
sequence number (big-endian, one counter for all links, wrapping) and the frame of the layers
above. A PROBE goes out on every link every probe interval, so that each link's liveness
(wire/liveness.py) follows its own frames, and a link that is down is probed until it comes
back; its body is the link's Report (wire/linkrate.py: the rate and round trip measured from
the probes), or none (a bare probe, as before the reports).
"""

from __future__ import annotations

import enum
import struct
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from linkbridge.wire import drops
from linkbridge.wire.frames import EXTENSION_HEADER, LINK_PROBE, extension_header
from linkbridge.wire.linkrate import REPORT, Report
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


RESEQUENCE_WAIT = 0.05  # seconds balance's receiver holds a frame for the ones before it
RESEQUENCE_LIMIT = 256  # frames it holds at most
RESEQUENCE_WINDOW = 4096  # a number further off than this starts the sequence over
NOMINAL_RATE = 100e6  # bit/s balance counts for a link that declares no figures

FrameTime = Callable[[int], float]  # seconds a frame of that many bytes keeps a link busy


class Policy(enum.StrEnum):
    FAILOVER = "failover"
    DUPLICATE = "duplicate"
    BALANCE = "balance"


POLICIES = tuple(Policy)


def probe_frame(report: Report) -> bytes:
    """A probe carrying the link's `report`."""
    return PROBE_FRAME + report.pack()


def data_frame(seq: int, frame: bytes) -> bytes:
    """`frame` of the layers above, behind the header with sequence number `seq`."""
    return _HEADER + bytes((DATA,)) + _SEQ.pack(seq % SEQ_SPACE) + frame


@dataclass(frozen=True)
class Parsed:
    """A frame read from one link: `seq` None for a probe, else the data frame's; a probe's
    `report` (None: a bare one)."""

    seq: int | None
    payload: bytes
    report: Report | None = None


def parse(frame: bytes) -> Parsed | str:
    """The probe or data frame `frame`, or the drop reason for a malformed one. A frame of
    another type (a peer with one link sends frames bare) comes back whole, seq None."""
    if frame[:EXTENSION_HEADER] != _HEADER:
        return Parsed(None, frame)
    if len(frame) == len(PROBE_FRAME) and frame[EXTENSION_HEADER] == PROBE:
        return Parsed(None, b"")
    if len(frame) == len(PROBE_FRAME) + REPORT.size and frame[EXTENSION_HEADER] == PROBE:
        return Parsed(None, b"", Report.unpack(frame[len(PROBE_FRAME):]))
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


@dataclass(frozen=True)
class LinkPace:
    """A link's own figures, for balance: how long a frame keeps it busy (rate and overhead),
    and the delay a frame sees on it besides (one way)."""

    frame_time: FrameTime
    delay: float = 0.0


def nominal_frame_time(size: int) -> float:
    return size * 8 / NOMINAL_RATE


NOMINAL = LinkPace(nominal_frame_time)  # a link that declares no figures


class Spreader:
    """Balance's choice: each frame on the usable link where it would arrive soonest, by each
    link's pace and what this side gave it already: traffic spreads in proportion to the
    links' rates once the fastest is busy, and a link with more delay takes a frame only when
    the others' queues are that much longer (so frames arrive about in the order they were
    sent). A link without figures counts as NOMINAL; a link's figures measured from its
    probes (measured()) take over where they are slower."""

    def __init__(self, paces: Sequence[LinkPace | None]) -> None:
        self.paces = [pace or NOMINAL for pace in paces]
        self.busy_until = [0.0] * len(paces)
        self.rates: list[float | None] = [None] * len(paces)  # measured, bit/s (None: none)
        self.delays: list[float] = [0.0] * len(paces)  # measured one way, seconds

    def measured(self, index: int, rate: float | None, round_trip: float | None) -> None:
        """Link `index`'s figures measured from its probes (wire/linkrate.py): it counts
        as no faster than `rate` and with no less delay than half `round_trip` (None: as its
        own figures say)."""
        self.rates[index] = rate
        self.delays[index] = (round_trip or 0.0) / 2

    def frame_time(self, index: int, size: int) -> float:
        """How long a `size`-byte frame keeps link `index` busy, by its own figure or its
        measured rate, whichever is slower."""
        own = self.paces[index].frame_time(size)
        rate = self.rates[index]
        return own if rate is None else max(own, size * 8 / rate)

    def pick(self, usable: Sequence[int], size: int, now: float) -> int:
        """The link for a `size`-byte frame sent at `now` (it is then busy with it)."""
        paces, busy, delays = self.paces, self.busy_until, self.delays
        _, index = min((max(now, busy[i]) + self.frame_time(i, size)
                        + max(paces[i].delay, delays[i]), i) for i in usable)
        busy[index] = max(now, busy[index]) + self.frame_time(index, size)
        return index


class Resequencer:
    """Balance's receiver: data frames back in the order of their sequence numbers. A frame
    ahead of the next expected one waits, at most `wait` seconds and with at most `limit`
    others, for the ones before it (then the gap is given up as lost); a late frame (after its
    gap was given up) passes at once. The numbers travel unauthenticated below the encrypt
    layer: a forged one can delay genuine frames by `wait` at most, or turn resequencing off
    until the sender's numbers bring it back, and never drops a frame."""

    def __init__(self, wait: float = RESEQUENCE_WAIT, limit: int = RESEQUENCE_LIMIT) -> None:
        self.wait = wait
        self.limit = limit
        self.expected: int | None = None
        self._held: dict[int, bytes] = {}
        self._deadlines: deque[tuple[float, int]] = deque()  # (deadline, seq), in arrival order
        self.reordered = 0  # frames that arrived ahead of one before them
        self.gaps = 0  # gaps given up (the frames lost, or later than the wait)

    def push(self, seq: int, payload: bytes, now: float) -> list[bytes]:
        """The frames `seq` (with `payload`) releases, in order."""
        expected = self.expected
        if expected is None:
            expected = self.expected = seq
        ahead = (seq - expected) % SEQ_SPACE
        behind = SEQ_SPACE - ahead
        if ahead == 0:
            self.expected = (seq + 1) % SEQ_SPACE
            return [payload, *self._consecutive()]
        if ahead < RESEQUENCE_WINDOW:
            self.reordered += 1
            self._held[seq] = payload
            self._deadlines.append((now + self.wait, seq))
            return self._skip_to(min(self._held, key=self._distance)) \
                if len(self._held) > self.limit else []
        if behind < RESEQUENCE_WINDOW or self._held:
            return [payload]  # late: its gap was given up
        self.expected = (seq + 1) % SEQ_SPACE  # far off, nothing held: start over from it
        return [payload]

    def expire(self, now: float) -> list[bytes]:
        """The frames released by gaps given up at `now`."""
        released: list[bytes] = []
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, seq = deadlines.popleft()
            if seq in self._held:
                released += self._skip_to(seq)
        return released

    def deadline(self) -> float | None:
        """When the next held frame's wait ends (None: none held)."""
        deadlines, held = self._deadlines, self._held
        while deadlines and deadlines[0][1] not in held:
            deadlines.popleft()
        return deadlines[0][0] if deadlines else None

    def _distance(self, seq: int) -> int:
        return (seq - (self.expected or 0)) % SEQ_SPACE

    def _skip_to(self, seq: int) -> list[bytes]:
        """Give up the gaps before `seq`: the held frames up to it, then those after it."""
        self.gaps += 1
        cut = self._distance(seq)
        before = sorted((s for s in self._held if self._distance(s) < cut), key=self._distance)
        released = [self._held.pop(s) for s in before]
        self.expected = seq
        return released + self._consecutive()

    def _consecutive(self) -> list[bytes]:
        """The held frames from the expected one on, without a gap."""
        released = []
        held = self._held
        while held and self.expected in held:
            expected = self.expected
            released.append(held.pop(expected))
            self.expected = (expected + 1) % SEQ_SPACE
        return released


class LinkTable:
    """The liveness of each link and the policy's choice of links for the next frame.

    Failover: the first usable link in the order given (usable: not down; one lost probe
    makes a link stale, not down, so it is no failover), except that a link that went down
    is used again only once it has stayed usable for `hold_time` seconds, so a flapping
    link never pulls traffic back and forth; while that link is stale, a copy of each frame
    goes on the first other link that is up (the receiver drops the later copy). Duplicate:
    every usable link. Balance: one usable link a frame, as the Spreader picks by the links'
    `paces` (None: no figures). With no link usable (at the start, or all cut) a frame goes
    out on every link.
    """

    def __init__(self, count: int, policy: Policy, thresholds: Thresholds, hold_time: float,
                 now: float, paces: Sequence[LinkPace | None] = ()) -> None:
        if count < 1:
            raise ValueError("a link table needs a link")
        self.policy = policy
        self.spreader = Spreader(paces or [None] * count)
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

    def in_use(self, now: float) -> range | tuple[int, ...]:
        """The links that carry traffic now."""
        if self.policy == Policy.FAILOVER:
            return self.targets(now)
        count = len(self.liveness)
        return tuple(i for i in range(count) if self.usable(i)) or range(count)

    def targets(self, now: float, size: int = 0) -> range | tuple[int, ...]:
        """The links the next frame (of `size` bytes) goes out on."""
        count = len(self.liveness)
        if self.policy == Policy.DUPLICATE:
            return self.in_use(now)
        if self.policy == Policy.BALANCE:
            usable = self.in_use(now)
            return usable if isinstance(usable, range) else (
                self.spreader.pick(usable, size, now),)
        active = self.active
        candidates = range(count if active is None or not self.usable(active) else active)
        best = next((i for i in candidates if self._trusted(i, now)), None)
        if best is None and (active is None or not self.usable(active)):
            best = next((i for i in range(count) if self.usable(i)), None)
        if best is not None and best != active:
            self.switches += active is not None
            self.active = active = best
        if active is None or not self.usable(active):
            return range(count)
        return (active, *self._spare(active))

    def _spare(self, active: int) -> tuple[int, ...]:
        """While failover's link is stale, the first other link that is up, to carry a copy of
        each frame: a dying link then costs its stale time, not its link timeout, and a lost
        probe moves nothing (no switch, no hold time; the copies stop with its next frame)."""
        if self.liveness[active].state != LinkState.STALE:
            return ()
        return next(((index,) for index, liveness in enumerate(self.liveness)
                     if index != active and liveness.state == LinkState.UP), ())
