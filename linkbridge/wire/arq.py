"""Link ARQ (`--repair arq`): sequence numbers, selective acknowledgements, bounded
retransmission and in-order delivery within a bounded wait. Pure: the caller passes the time.

Sequence numbers are 8 bits; at most WINDOW frames are outstanding and a receiver holds at
most WINDOW frames, so 128 of the 256 values always separate old from new. Persistence is low
(RFC 3366): a frame is retransmitted about one link RTT after it was last sent, at most
`retries_for(rto)` times, so that link repair ends before TCP's own timers would fire; then
the sender forgets it and the receiver, after its own bounded wait, passes on and reports the
loss. docs/repair.md has the wire format and the reasoning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

SEQ_SPACE = 256
HALF = SEQ_SPACE // 2
WINDOW = 32  # frames outstanding (sender) or held (receiver); also the acknowledgement's bits
PERSISTENCE = 1.0  # s: RFC 6298's least TCP RTO, the time link repair must end within
MIN_RETRIES = 2
MAX_RETRIES = 4
MIN_RTO = 0.05  # s
MAX_RTO = 30.0  # s: the backed-off timer's ceiling
TURN = 0.75  # of the least RTT: over half duplex, an acknowledgement that comes this long after
# a frame was sent answers a turn of the link that had it on the air (the shortest round trip
# is a frame offered last to a transmission, less what the air's timing may vary)


def seq_after(seq: int, count: int = 1) -> int:
    """The sequence number `count` after `seq`."""
    return (seq + count) % SEQ_SPACE


def distance(seq: int, base: int) -> int:
    """How far `seq` is ahead of `base`, modulo the sequence space (>= HALF: behind it)."""
    return (seq - base) % SEQ_SPACE


def retries_for(rto: float) -> int:
    """How often a frame is retransmitted when a retransmission waits `rto`: as often as fits
    in PERSISTENCE, between MIN_RETRIES and MAX_RETRIES (RFC 3366's low persistence)."""
    return max(MIN_RETRIES, min(MAX_RETRIES, int(PERSISTENCE / rto)))


@dataclass(frozen=True)
class Ack:
    """A selective acknowledgement: every frame before `next` was received or given up, and bit
    i of `bits` says that frame `next + 1 + i` was received."""

    next: int
    bits: int

    def covers(self, seq: int) -> bool:
        """Whether `seq` needs no more retransmission."""
        ahead = distance(seq, self.next)
        if ahead >= HALF:
            return True
        return 0 < ahead <= WINDOW and bool(self.bits >> (ahead - 1) & 1)


@dataclass
class _Pending:
    payload: bytes
    sent_at: float
    tries: int = 0  # retransmissions so far
    gap: bool = False  # due because an acknowledgement showed it missing, not by the timer


def smoothed(srtt: float | None, rttvar: float, rtt: float) -> tuple[float, float]:
    """RFC 6298 2.2-2.3: the smoothed RTT and its variation after one more sample `rtt`."""
    if srtt is None:
        return rtt, rtt / 2
    return 0.875 * srtt + 0.125 * rtt, 0.75 * rttvar + 0.25 * abs(srtt - rtt)


class RttEstimator:
    """Smoothed RTT and retransmission timeout after RFC 6298 (its constants, and the RTT
    itself for its clock granularity), from the transmission of each frame sent once to its
    acknowledgement."""

    def __init__(self, initial: float) -> None:
        self.srtt: float | None = None
        self.rttvar = initial / 2
        self.rto = initial
        self.least: float | None = None  # the shortest sample

    def sample(self, rtt: float) -> None:
        self.least = rtt if self.least is None else min(self.least, rtt)
        srtt, self.rttvar = smoothed(self.srtt, self.rttvar, rtt)
        self.srtt = srtt
        # at least twice the RTT: selective acknowledgements repair most losses sooner,
        # the timer is the backstop, and a queue in the link that grows must not make it
        # race the acknowledgements (a spurious retransmission costs airtime)
        self.rto = min(MAX_RTO, max(MIN_RTO, srtt + max(4 * self.rttvar, srtt)))

    def back_off(self) -> None:
        """The timer fired: double the RTO until a new sample (RFC 6298 5.5), so that a
        link whose queue holds frames longer than the RTO stops sending them again (with
        Karn's rule the only way out of a timer shorter than the RTT)."""
        self.rto = min(MAX_RTO, self.rto * 2)


class ArqSender:
    """Numbers frames, keeps the unacknowledged ones (at most WINDOW: a new frame pushes the
    oldest out, given up) and says which to send again when. `count(name)` counts
    "retransmissions" and "given_up"."""

    def __init__(self, rtt: RttEstimator, count: Callable[[str], None],
                 retransmit: bool = True, half_duplex: bool = False) -> None:
        self.rtt = rtt
        self.retransmit = retransmit
        self.half_duplex = half_duplex
        self._count = count
        self._next = 0
        self._pending: dict[int, _Pending] = {}

    @property
    def outstanding(self) -> int:
        return len(self._pending)

    def stamp(self, payload: bytes, now: float) -> int:
        """The sequence number of a new frame carrying `payload`, sent at `now`."""
        seq, self._next = self._next, seq_after(self._next)
        if self.retransmit:
            if len(self._pending) >= WINDOW:
                del self._pending[next(iter(self._pending))]
                self._count("given_up")
            self._pending[seq] = _Pending(payload, now)
        return seq

    def oldest(self) -> int:
        """The first frame that may still be sent again (the next one's number when none)."""
        return next(iter(self._pending), self._next)

    def abandon(self, seq: int) -> None:
        """Send frame `seq` no more (its retransmission was dropped on the way out)."""
        if self._pending.pop(seq, None) is not None:
            self._count("given_up")

    def withdraw(self) -> int:
        """Take back the latest stamp(): its frame never left. Its number (returned) goes to
        the next frame."""
        self._next = seq_after(self._next, SEQ_SPACE - 1)
        self._pending.pop(self._next, None)
        return self._next

    def acknowledged(self, ack: Ack, now: float) -> None:
        """Forget the frames `ack` covers, each one sent once an RTT sample (Karn).
        A frame last sent before the newest frame `ack` covers is due at once: a selective
        acknowledgement shows the gap (links seldom reorder; TCP's fast retransmit). Over
        half duplex, so is one last sent TURN of the least RTT before `ack` came: the peer sent it
        after the link turned around, when every frame sent before had been on the air (a
        lost retransmission or a burst's last frame: no later frame shows those)."""
        newest = None  # when the newest frame covered was sent (sent once: no doubt which)
        for seq in [seq for seq in self._pending if ack.covers(seq)]:
            pending = self._pending.pop(seq)
            if pending.tries == 0:  # Karn: a frame sent again gives no RTT sample (at 20%
                # loss a fifth of them would each add a retransmission's wait)
                self.rtt.sample(now - pending.sent_at)
                newest = pending.sent_at if newest is None else max(newest, pending.sent_at)
        if self.half_duplex and self.rtt.least is not None:
            turned = now - TURN * self.rtt.least
            newest = turned if newest is None else max(newest, turned)
        if newest is None:
            return
        for pending in self._pending.values():
            if pending.sent_at < newest:
                pending.gap = True

    def due(self, now: float, quiet: float = float("-inf")) -> list[tuple[int, bytes]]:
        """The frames to send again at `now`: those an acknowledgement showed missing, and
        those whose timer ran out (their timers restart); frames retransmitted `retries_for()`
        times already are given up instead. A timer runs from the frame's sending or from
        `quiet`, whichever is later: over half duplex, when the link has sent all it was
        given and stopped hearing the peer (before then no acknowledgement can come, and a
        timer that ran meanwhile sent most of a long burst again)."""
        again = []
        limit = retries_for(self.rtt.rto)
        timed_out = False
        for seq, pending in list(self._pending.items()):
            if not pending.gap and max(pending.sent_at, quiet) + self.rtt.rto > now:
                continue
            if pending.tries >= limit:
                del self._pending[seq]
                self._count("given_up")
                continue
            pending.tries += 1
            pending.sent_at = now
            timed_out |= not pending.gap
            pending.gap = False
            self._count("retransmissions")
            again.append((seq, pending.payload))
        if timed_out:
            self.rtt.back_off()
        return again

    def deadline(self, quiet: float = float("-inf")) -> float | None:
        """When due() next has work (None: nothing outstanding)."""
        if not self._pending:
            return None
        return min(float("-inf") if p.gap else max(p.sent_at, quiet) + self.rtt.rto
                   for p in self._pending.values())


class Receiver:
    """Takes numbered frames in any order, each once, and resolves every sequence number:
    received, or lost after waiting `hold` seconds from when a later frame arrived.

    `ordered` (ARQ): frames are delivered in sequence order, a gap held at most `hold`;
    otherwise (FEC) each frame is delivered as it arrives and only the loss report waits.
    A lost frame is delivered as a `None` mark in its place.
    `count(name)` counts "duplicates", "unrepaired", "resyncs" and, per resolved frame,
    "received" or "missed" (not received as sent: repaired or lost): the link's loss."""

    def __init__(self, hold: float, count: Callable[[str], None], ordered: bool = True) -> None:
        self.hold = hold
        self.ordered = ordered
        self._count = count
        self._next = 0
        self._started = False
        # frames ahead of _next: payload (None once delivered), when it came, whether repaired
        self._ahead: dict[int, tuple[bytes | None, float, bool]] = {}

    def accept(self, seq: int, payload: bytes, now: float, repaired: bool = False
               ) -> list[bytes | None]:
        """A frame came in (`repaired`: rebuilt, not received); what is now deliverable."""
        self._start(seq)
        ahead = distance(seq, self._next)
        out: list[bytes | None] = []
        if HALF <= ahead < SEQ_SPACE - 2 * WINDOW:  # too far back to be a copy: a new sender
            out += self._resync(seq)
            ahead = 0
        if ahead >= HALF or seq in self._ahead:
            self._count("duplicates")
            return out
        if ahead >= WINDOW:  # the sender moved on: what lies a window behind is lost
            out += self._give_up(seq_after(seq, SEQ_SPACE - WINDOW + 1))
            ahead = distance(seq, self._next)
        # a frame that comes after a later one was lost on the way once (and sent again)
        missed = repaired or any(distance(held, self._next) > ahead for held in self._ahead)
        if self.ordered:
            self._ahead[seq] = (payload, now, missed)
        else:
            self._ahead[seq] = (None, now, missed)
            out.append(payload)
        out += self._advance()
        return out

    def missing(self, seq: int) -> bool:
        """Whether `seq` is in the window and not yet received (a repair can still help)."""
        ahead = distance(seq, self._next)
        return self._started and ahead < WINDOW and seq not in self._ahead

    def forward(self, oldest: int) -> list[bytes | None]:
        """The sender will send nothing before `oldest` again: gaps before it are lost."""
        self._start(oldest)
        if 0 < distance(oldest, self._next) < HALF:
            return self._give_up(oldest)
        return []

    @property
    def gapless(self) -> bool:
        """Whether no frame waits behind a gap."""
        return not self._ahead

    def expire(self, now: float) -> list[bytes | None]:
        """Give up the gaps held `hold` seconds; what is then deliverable."""
        out: list[bytes | None] = []
        while self._ahead and min(at for _, at, _ in self._ahead.values()) + self.hold <= now:
            out += self._give_up(seq_after(self._next))
        return out

    def deadline(self) -> float | None:
        if not self._ahead:
            return None
        return min(at for _, at, _ in self._ahead.values()) + self.hold

    def ack(self) -> Ack:
        bits = 0
        for seq in self._ahead:
            bits |= 1 << (distance(seq, self._next) - 1)
        return Ack(self._next, bits)

    def _start(self, seq: int) -> None:
        """Follow a sender first heard at `seq`: a fresh one starts at 0, and what came
        before is lost."""
        if not self._started:
            self._started, self._next = True, 0 if seq < WINDOW else seq

    def _give_up(self, until: int) -> list[bytes | None]:
        """Resolve every sequence number before `until`: held frames delivered, gaps lost."""
        out: list[bytes | None] = []
        while distance(until, self._next) and distance(until, self._next) < HALF:
            if self._next not in self._ahead:
                self._count("unrepaired")
                self._count("missed")
                out.append(None)
                self._next = seq_after(self._next)
            out += self._advance()
        return out

    def _resync(self, seq: int) -> list[bytes | None]:
        """The peer started afresh at `seq`: deliver what is held and follow it."""
        held: list[bytes | None] = [
            self._ahead[old][0] or b"" for old in
            sorted(self._ahead, key=lambda old: distance(old, self._next))]
        self._ahead.clear()
        self._next = seq
        self._count("resyncs")
        return [payload for payload in held if payload]

    def _advance(self) -> list[bytes | None]:
        out: list[bytes | None] = []
        while self._next in self._ahead:
            payload, _, repaired = self._ahead.pop(self._next)
            self._count("missed" if repaired else "received")
            if payload is not None:
                out.append(payload)
            self._next = seq_after(self._next)
        return out
