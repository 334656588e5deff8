"""The loss-repair layer (`--repair off|arq|fec|auto`): its frames (extension subtype REPAIR)
and the state machine that joins link ARQ (arq.py) and packet-level FEC (fec.py). Pure: the
caller passes the time and sends what it is given.

A repair frame is `extension_header(REPAIR)`, a kind byte, then the kind's fields:

- DATA: the sequence number, how long the receiver may hold a gap for this sender (in units
  of HOLD_UNIT: the sender knows its timers), the oldest frame the sender may still send
  again or cover with parity (the receiver gives up gaps before it: SCTP's FORWARD-TSN; links
  deliver in order), then the frame of the layer above;
- DATA with ACKED set in the kind: the same three fields, an acknowledgement (ACK's fields),
  then the frame above (the acknowledgement rides on reverse traffic); AGAIN set in the kind
  marks a retransmission (for whoever counts the airtime: the receiver reads it as DATA);
- ACK: the next sequence number expected, 4 bytes of bits for the WINDOW after it, the loss the
  receiver measures (0-255 for 0-100%);
- PARITY: the first sequence number of its group, k, m, its index (k..m-1), then a zfec block.

Frames that are not repair frames pass up unchanged (a peer without the layer).
docs/repair.md says when each mode helps.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace

from linkbridge.wire import drops
from linkbridge.wire.arq import (
    HALF,
    PERSISTENCE,
    SEQ_SPACE,
    WINDOW,
    Ack,
    ArqSender,
    Receiver,
    RttEstimator,
    distance,
    retries_for,
)
from linkbridge.wire.fec import GROUP, FecReceiver, FecSender, Parity, redundancy
from linkbridge.wire.frames import EXTENSION_HEADER, REPAIR, extension_header, extension_subtype

OFF, ARQ, FEC, AUTO = "off", "arq", "fec", "auto"
MODES = (OFF, ARQ, FEC, AUTO)

DATA, ACK, PARITY = 1, 2, 3
ACKED = 0x10  # in a DATA frame's kind: an acknowledgement follows the sequence number
AGAIN = 0x20  # in a DATA frame's kind: a retransmission
FLAGS = ACKED | AGAIN
ACK_FIELDS = 6
PARITY_FIELDS = 4
HEADER = EXTENSION_HEADER + 4  # what a DATA frame adds
HOLD_UNIT = 0.1  # s: a hold of 25.5 s at most
OVERHEAD = HEADER  # what the layer takes from the link's MTU: an acknowledgement rides on a
# DATA frame only where it fits, else it goes in an ACK frame of its own
PREFIX = extension_header(REPAIR)
IDLE = 0.05  # s a frame keeps a link busy that does not say how long (SendTiming)
PACE = 1.25  # parity frames sent per parity frame made, at most, between data frames
REPORT_SOON = 0.5  # s: the loss report's wait while the peer's parity falls short of it
LOSS_WEIGHT = 1 / 256  # of each frame resolved in the measured loss (the mean of all frames
# until as many have been resolved: a start from 0 would say "no loss" for the first minute)


@dataclass(frozen=True)
class Settings:
    """The layer's figures: the RTT assumed until measured (the first RTO), how long a group
    of FEC frames stays open, how long parity may wait for idle airtime, how long an unordered (FEC)
    receiver waits before it reports a frame lost, how often it reports its loss, and how
    long an acknowledgement waits for more to batch with or a data frame to ride on (each
    costs airtime, more so on half duplex; it waits no longer, as its wait is in the RTT).
    `half_duplex`: the link turns around between the two sides' transmissions (a radio that
    says when it is ready): an acknowledgement waits for the turn (for the link's readiness,
    the endpoint's business) and shows every frame sent before it (ArqSender.acknowledged())."""

    rtt: float = 1.0
    group_wait: float = 2.0
    parity_wait: float = 2.0
    fec_hold: float = 5.0
    report_every: float = 2.0
    ack_delay: float = 0.1
    half_duplex: bool = False


HALF_DUPLEX_ACK_DELAY = 0.5  # s: the link's turn (its txtail) comes first, then data to ride on


def link_settings(round_trip: float | None, half_duplex: bool = False) -> Settings:
    """The settings for a link whose full frame and small answer take `round_trip` s (its
    SendTiming figures; None: not known): the timer starts at twice that, 1 s at least;
    over `half_duplex` an acknowledgement waits for a data frame back a while longer."""
    default = Settings()
    if half_duplex:
        default = replace(default, half_duplex=True, ack_delay=HALF_DUPLEX_ACK_DELAY)
    if round_trip is None:
        return default
    return replace(default, rtt=max(default.rtt, 2 * round_trip))


def hold_for(rto: float) -> float:
    """How long an ARQ receiver holds a gap: the sender's retransmissions and a margin."""
    return (retries_for(rto) + 1.5) * rto


class LinkRepair:
    """One link's repair state: `send()` numbers a frame, `receive()` takes a frame from the
    link, `tick()` does what is due; each returns frames for the link and/or frames (and
    None where a frame was lost) for the layer above. `stats` counts retransmissions,
    repaired, unrepaired, duplicates and what the layer sent of its own."""

    def __init__(self, mode: str, settings: Settings | None = None,
                 drop: Callable[[str], None] = lambda reason: None,
                 mtu: int | None = None,
                 frame_time: Callable[[int], float] | None = None) -> None:
        if mode not in MODES or mode == OFF:
            raise ValueError(f"repair mode {mode!r}: one of {', '.join(MODES[1:])}")
        self.mode = mode
        self.mtu = mtu  # the link's largest frame (None: any size)
        self._frame_time = frame_time  # how long a frame of so many bytes keeps the link busy
        self._drop = drop
        self.settings = settings = settings or Settings()
        self.stats: Counter[str] = Counter()
        self.rtt = RttEstimator(settings.rtt)
        self.sender = ArqSender(self.rtt, self._count, retransmit=mode != FEC,
                                half_duplex=settings.half_duplex)
        self.receiver = Receiver(settings.fec_hold, self._count, ordered=mode != FEC)
        self.fec_out = FecSender(settings.group_wait)
        self.fec_in = FecReceiver(self.receiver.missing)
        self.loss = 0.0  # measured here, on frames from the peer
        self._resolved = 0  # frames from the peer resolved, up to 1 / LOSS_WEIGHT
        self.peer_loss = 0.0  # as the peer reports it, on frames from here
        self._parity: list[Parity] = []
        self._ack_due: float | None = None
        self._busy_until = float("-inf")  # when the link has sent what it was given
        self._credit = 0.0  # parity frames that may go out now, PACE per one made
        self._last_data = float("-inf")  # when the latest DATA frame was sent
        self._unready = float("-inf")  # when tick() last found the link not ready
        self._piggybacked = False  # whether the latest DATA frame carried the acknowledgement
        self._heard = (GROUP, 0)  # the latest parity frame's k and parity count (FEC)

    @property
    def retransmitting(self) -> bool:
        """ARQ; auto while a retransmission can end within PERSISTENCE."""
        return self.mode == ARQ or (self.mode == AUTO and self.rtt.rto <= PERSISTENCE)

    @property
    def coding(self) -> bool:
        """FEC; auto when retransmission cannot."""
        return self.mode == FEC or (self.mode == AUTO and not self.retransmitting)

    def send(self, payload: bytes, now: float) -> list[bytes]:
        """The frames that carry `payload` (its DATA frame, then any parity it completes)."""
        self.sender.retransmit = self.retransmitting
        seq = self.sender.stamp(payload, now)
        frames = [self._data(seq, payload, now)]
        self._last_data = now
        self._busy(frames, now)
        if self.coding:
            self.fec_out.parity = redundancy(self.peer_loss, GROUP)
            self._credit = min(PACE, self._credit + PACE * self.fec_out.parity / GROUP)
            self._parity += self.fec_out.add(seq, payload, now)
        return frames + self._parity_out(now)

    def withdraw(self, now: float) -> None:
        """The DATA frame of the latest send() never left (the link's queue was full): forget
        it, so that its number goes to the next frame and the loss stays the congestion
        signal it is for TCP; an acknowledgement it carried is due again."""
        seq = self.sender.withdraw()
        if not self.fec_out.withdraw(seq):  # its group closed: its parity would mislead
            self._parity = [p for p in self._parity if distance(seq, p.first) >= p.k]
        if self._piggybacked:
            self._ack_due = now

    def receive(self, frame: bytes, now: float) -> list[bytes | None]:
        """What a frame from the link gives the layer above."""
        if extension_subtype(frame) != REPAIR:
            return [frame]
        parsed = parse(frame)
        if parsed is None:
            self._drop(drops.REPAIR_MALFORMED)
            return []
        kind, seq, hold, oldest, ack, loss, body = parsed
        if ack is not None:
            self.sender.acknowledged(ack, now)
            self.peer_loss = loss
        if kind == ACK:
            return []
        if kind == PARITY:
            self.stats["parity_received"] += 1
            parity = body_parity(seq, body)
            self._heard = (parity.k, parity.m - parity.k)
            return self._rebuilt(self.fec_in.parity(parity), now)
        self.receiver.hold = hold
        due = now + (self.settings.ack_delay if self.mode != FEC else self._report_wait())
        self._ack_due = due if self._ack_due is None else min(self._ack_due, due)
        gapless = self.receiver.gapless
        out = self.receiver.forward(oldest) + self.receiver.accept(seq, body, now)
        if gapless and not self.receiver.gapless and self.mode != FEC:
            self._ack_due = now  # a gap opened: tell the sender at once, as TCP's dupack
        return out + self._rebuilt(self.fec_in.data(seq, body), now)

    def _report_wait(self) -> float:
        """How long the loss report waits (FEC): REPORT_SOON while the parity heard falls
        short of the loss measured here by more than a frame (the peer has not heard: a report
        was lost, or none went yet), else the settings' report_every."""
        k, parity = self._heard
        if redundancy(self.loss, k) > parity + 1:
            return min(REPORT_SOON, self.settings.report_every)
        return self.settings.report_every

    def tick(self, now: float, ready: bool = True) -> tuple[list[bytes], list[bytes | None]]:
        """What is due at `now`: frames for the link (retransmissions, an acknowledgement,
        parity), frames and loss marks for the layer above (a gap given up). An
        acknowledgement waits while the link is not `ready` (half duplex: the peer's
        transmission goes on, and what it brings goes in the same acknowledgement)."""
        if not ready:
            self._unready = now
        frames = [self._data(seq, payload, now, again=True)
                  for seq, payload in self.sender.due(now, self._quiet())]
        if self._ack_due is not None and self._ack_due <= now and ready:
            frames.append(PREFIX + bytes([ACK]) + self._ack_fields(now))
            self.stats["acks_sent"] += 1
        if self.coding:
            self._parity += self.fec_out.due(now)
        self._busy(frames, now)
        return frames + self._parity_out(now), self.receiver.expire(now)

    def _parity_out(self, now: float) -> list[bytes]:
        """The parity frames to send at `now`: all that is due (a bulk group's, or any over
        a link without figures, which pacing could only guess at), else one into idle airtime
        as they are made (a data frame meets one at most)."""
        if self._parity and self._parity_due() <= now:
            sent, self._parity = self._parity, []
        elif self._parity and self._busy_until <= now and (
                self._credit >= 1 or self._stopped() <= now):
            sent, self._parity = self._parity[:1], self._parity[1:]
            self._credit = max(0.0, self._credit - 1)
        else:
            return []
        frames = [parity_frame(parity) for parity in sent]
        self.stats["parity_sent"] += len(frames)
        self._busy(frames, now)
        return frames

    def _quiet(self) -> float:
        """Since when the link is quiet, for the retransmission timer (half duplex: it has
        sent all it was given and was last found not ready, hearing the peer)."""
        if not self.settings.half_duplex:
            return float("-inf")
        return max(self._busy_until, self._unready)

    def _stopped(self) -> float:
        """From when the traffic has stopped (no data frame for FecSender.quiet): the parity
        waiting goes into idle airtime whatever the credit."""
        return self._last_data + self.fec_out.quiet

    def _parity_due(self) -> float:
        """When the parity waiting must go, idle airtime or not (a bulk group's, or over a
        link without figures: at once)."""
        if self._frame_time is None:
            return float("-inf")
        return min(parity.made_at for parity in self._parity) + self.settings.parity_wait

    def _busy(self, frames: list[bytes], now: float) -> None:
        """`frames` go to the link at `now`: when it will have sent them."""
        for frame in frames:
            self._busy_until = max(self._busy_until, now) + (
                IDLE if self._frame_time is None else self._frame_time(len(frame)))

    @property
    def ack_waiting(self) -> bool:
        """Whether an acknowledgement is due (it may wait for the link to be ready)."""
        return self._ack_due is not None

    def deadline(self, ready: bool = True) -> float | None:
        """When tick() next has work (None: nothing waits); an acknowledgement that waits
        for the link to be `ready` is not counted."""
        times = [self.sender.deadline(self._quiet()), self.receiver.deadline(),
                 self._ack_due if ready else None,
                 self.fec_out.deadline() if self.coding else None]
        if self._parity:
            times.append(self._parity_due())
            times.append(max(self._busy_until,
                             float("-inf") if self._credit >= 1 else self._stopped()))
        return min((t for t in times if t is not None), default=None)

    def status(self) -> dict[str, object]:
        """The layer's figures for `linkbridge status`."""
        return {"mode": self.mode, **dict(sorted(self.stats.items())),
                "rto_ms": round(self.rtt.rto * 1000), "loss": round(self.loss, 4),
                "peer_loss": round(self.peer_loss, 4), "parity": self.fec_out.parity,
                "outstanding": self.sender.outstanding}

    def _rebuilt(self, frames: list[tuple[int, bytes]], now: float) -> list[bytes | None]:
        out: list[bytes | None] = []
        for seq, payload in frames:
            self.stats["repaired"] += 1
            out += self.receiver.accept(seq, payload, now, repaired=True)
        return out

    def _data(self, seq: int, payload: bytes, now: float, again: bool = False) -> bytes:
        hold = self.settings.fec_hold if self.mode == FEC else hold_for(self.rtt.rto)
        fields = bytes((seq, min(255, round(hold / HOLD_UNIT)), self._oldest(seq)))
        kind = DATA | (AGAIN if again else 0)
        self._piggybacked = self._ack_due is not None and (
            self.mtu is None or len(payload) + HEADER + ACK_FIELDS <= self.mtu)
        if not self._piggybacked:
            return PREFIX + bytes([kind]) + fields + payload
        return PREFIX + bytes([kind | ACKED]) + fields + self._ack_fields(now) + payload

    def _oldest(self, seq: int) -> int:
        """The oldest frame a receiver may still get: one to be sent again, or covered by
        parity not yet sent; `seq` (the frame being sent) at the latest."""
        firsts = [self.sender.oldest() if self.sender.retransmit else seq, seq,
                  *(p.first for p in self._parity[:1]), *self.fec_out.first()]
        return min(firsts, key=lambda first: (distance(first, seq) - HALF) % SEQ_SPACE)

    def dropped(self, frame: bytes) -> None:
        """The link dropped `frame` on the way out (a full queue): a DATA frame is not sent
        again (the loss is TCP's congestion signal), and the receiver hears so from the next."""
        if frame[EXTENSION_HEADER] & ~FLAGS == DATA:
            self.sender.abandon(frame[EXTENSION_HEADER + 1])

    def _ack_fields(self, now: float) -> bytes:
        """An acknowledgement's fields; while a gap is held, the next is due one RTT on (the
        sender hears of the gap though this one is lost, and no later frame may come: a TCP
        sender waits for the frames held behind the gap)."""
        self._ack_due = None
        if not self.receiver.gapless and self.mode != FEC:
            self._ack_due = now + max(self.settings.ack_delay, self.rtt.srtt or self.settings.rtt)
        ack = self.receiver.ack()
        return (bytes([ack.next]) + ack.bits.to_bytes(WINDOW // 8, "big")
                + bytes([round(self.loss * 255)]))

    def _count(self, name: str) -> None:
        if name in ("received", "missed"):
            self._resolved = min(self._resolved + 1, round(1 / LOSS_WEIGHT))
            self.loss += ((name == "missed") - self.loss) / self._resolved
            return
        self.stats[name] += 1
        if name == "duplicates":
            self._drop(drops.REPAIR_DUPLICATE)


def parse(frame: bytes) -> tuple[int, int, float, int, Ack | None, float, bytes] | None:
    """A repair frame's kind, sequence number (a PARITY frame's first), the hold it asks for
    and the oldest frame it may send again (DATA), acknowledgement, the loss it reports and the
    rest; None when malformed."""
    at = EXTENSION_HEADER
    if len(frame) < at + 1:
        return None
    kind = frame[at] & ~AGAIN if frame[at] & ~FLAGS == DATA else frame[at]
    at += 1
    seq, hold, oldest = 0, 0.0, 0
    if kind & ~ACKED in (DATA, PARITY):
        if len(frame) < at + 1:
            return None
        seq, at = frame[at], at + 1
    if kind & ~ACKED == DATA:
        if len(frame) < at + 2:
            return None
        hold, oldest, at = frame[at] * HOLD_UNIT, frame[at + 1], at + 2
    if kind & ~ACKED not in (DATA, ACK, PARITY) or (kind & ACKED and kind & ~ACKED != DATA):
        return None
    ack, loss = None, 0.0
    if kind in (ACK, DATA | ACKED):
        if len(frame) < at + ACK_FIELDS:
            return None
        ack = Ack(frame[at], int.from_bytes(frame[at + 1:at + 5], "big"))
        loss, at = frame[at + 5] / 255, at + ACK_FIELDS
    if kind == PARITY and (len(frame) <= at + PARITY_FIELDS
                           or not _parity_ok(frame[at:at + PARITY_FIELDS - 1])):
        return None
    return kind & ~ACKED, seq, hold, oldest, ack, loss, frame[at:]


def _parity_ok(fields: bytes) -> bool:
    """k, m and the index of a PARITY frame: 1 <= k <= index < m."""
    return len(fields) == 3 and 1 <= fields[0] < fields[1] and fields[0] <= fields[2] < fields[1]


def body_parity(first: int, body: bytes) -> Parity:
    """A PARITY frame's fields after the first sequence number (checked by parse())."""
    return Parity(first, body[0], body[1], body[2], body[PARITY_FIELDS - 1:])


def parity_frame(parity: Parity) -> bytes:
    return (PREFIX + bytes((PARITY, parity.first, parity.k, parity.m, parity.index))
            + parity.data)
