"""A shared half-duplex radio channel: p-persistent CSMA, collisions, duty cycle. Pure logic.

Stations join with their radio's settings, offer frames at a time, and the channel says what
reaches whom and when. Time is passed in (`advance(now)`, `offer(..., now)`) and the persistence
draws come from a generator passed in, so a run is reproducible. The medium process
(medium.py) drives it on the real clock; tests drive it on a simulated one.

The rules:
- A station with a frame senses the channel. It hears a transmission of another station only
  from its carrier-detect delay (`dcd`, by default its `slottime`) after that transmission
  started, so frames that start within that delay of each other both go on the air.
- Busy: it waits until the channel is free. Free: with `slotwait` it first waits one slot (and
  senses again); then it draws 0..255 and transmits when the draw is <= `persist` (KISS TNCs'
  rule: probability (persist + 1) / 256), else it waits one slot and senses again.
- A transmission keys up for `txdelay`, sends its frames back to back, each for its airtime,
  then holds the carrier for `txtail`; all of it counts as time on air (and for the duty
  cycle). It carries the head frame and up to `burst - 1` more queued ones; a frame offered
  before the last frame's data ends joins it while the burst has room (not with a duty cycle).
- A frame is lost to every receiver (a collision, counted for its sender) when another
  transmission is on the air at any moment between its start (the key-up, for the first frame
  of a transmission; else the previous frame's end) and the end of its data; else every other
  station receives it when its data ends. A transmitting station hears nothing.
- Duty cycle: a station transmits only when its airtime over any `duty_window` stays within
  `duty`; a frame waits (counted as a duty wait) until then, or is dropped if it could never fit.
- Each station queues at most `limit` frames; more are dropped (`queue_full`).
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from linkbridge_sim.codel import CoDel
from linkbridge_sim.duty import DutyCycle
from linkbridge_sim.reception import Reception, survives

Airtime = Callable[[int], float]  # seconds on air of a frame of so many bytes (data only)
ALWAYS = 255  # persist value that always transmits on a free channel
HEAD = 3  # bytes of a frame that name its kind in the airtime count by head
SMALL = 96  # bytes: a frame this short is counted apart from longer ones of its head
HEADS = 32  # heads counted apart at most (the counters go in one datagram); the rest: "other"
READY_DEPTH = 2  # frames a ready station holds at most: one on the air, the next to follow it


@dataclass(frozen=True)
class Radio:
    """One station's radio: how long its frames take and how it shares the channel.

    `frame_airtime`, when given, is the time on air of a frame's data from its bytes (on-air
    framing: flags, FCS, bit stuffing; see framing.py) and replaces `airtime(len(frame))`.
    `burst` is how many queued frames one key-up carries (a KISS TNC sends all it holds);
    `slotwait` waits one slot before the first persistence draw on a free channel (Dire Wolf);
    `dcd` is the carrier-detect delay (None: one `slottime`). As a receiver it loses `rxloss`
    of every frame it hears and, with a `capture` margin (dB), decodes a frame that overlaps
    others when it is that much stronger than each; `level` is its signal in dB at the others
    (reception.py: a topology can set both per pair)."""

    airtime: Airtime
    persist: int = 63
    slottime: float = 0.010
    txdelay: float = 0.0
    txtail: float = 0.0
    duty: float | None = None  # share of any duty_window it may be on the air
    duty_window: float = 3600.0
    limit: int = 1000
    burst: int = 1
    slotwait: bool = False
    dcd: float | None = None
    frame_airtime: Callable[[bytes], float] | None = None
    rxloss: float = 0.0
    level: float = 0.0
    capture: float | None = None
    limit_bytes: int | None = None  # bytes it queues, besides `limit` frames
    codel: tuple[float, float] | None = None  # CoDel's target and interval on its queue

    def data_time(self, frame: bytes) -> float:
        """Time on air of `frame`'s data (no key-up or tail)."""
        if self.frame_airtime is not None:
            return self.frame_airtime(frame)
        return self.airtime(len(frame))

    def on_air(self, size: int) -> float:
        """Time on air of a `size`-byte frame alone: key-up, data, tail."""
        return self.txdelay + self.data_time(bytes(size)) + self.txtail

    @property
    def carrier_delay(self) -> float:
        return self.slottime if self.dcd is None else self.dcd


@dataclass
class StationStats:
    """What happened to one station's frames."""

    offered: int = 0
    sent: int = 0  # frames put on the air
    transmissions: int = 0  # key-ups: the frames go out in so many transmissions
    delivered: int = 0  # sent and received by at least one station
    collisions: int = 0  # sent, overlapped another transmission, received by nobody
    lost: int = 0  # sent, but lost by the sender's loss model (offered as lost)
    missed: int = 0  # sent, alone on the air, received by nobody (per-pair loss, range)
    rx_lost: int = 0  # (as a receiver) frames it would have decoded but lost to per-pair loss
    captured: int = 0  # (as a receiver) frames it decoded despite an overlap (capture)
    queue_full: int = 0
    codel_drops: int = 0  # frames CoDel dropped as they left the queue
    too_long: int = 0  # longer on air than the duty cycle ever allows
    airtime: float = 0.0  # seconds on the air
    duty_waits: int = 0  # frames that had to wait for the duty cycle
    duty_wait_time: float = 0.0
    queueing: float = 0.0  # sum over sent frames of offer -> start of transmission
    duty_peak: float = 0.0  # most airtime in any duty window (0 without a duty cycle)
    # frames sent and their data's airtime (no key-up or tail) by head(): what the layers
    # above spend the air on (their frames' first bytes say which kind each is)
    heads: dict[str, list[float]] = field(default_factory=dict)

    def count_head(self, frame: bytes, airtime: float) -> None:
        name = head(frame)
        if name not in self.heads and len(self.heads) >= HEADS:
            name = "other"
        counted = self.heads.setdefault(name, [0, 0.0])
        counted[0] += 1
        counted[1] += airtime

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Readiness:
    """What a station's sender needs to know to hand its radio a frame only when it can go
    out soon: how many frames the channel has had from it (`offered`), how many of them it
    still holds (queued, or in its transmission with their data not yet ended), and whether it
    hears another station's transmission (`busy`) while not transmitting itself."""

    offered: int
    held: int
    busy: bool

    def ready(self, sent: int) -> bool:
        """Whether a station that has sent the channel `sent` frames (those it has not had
        yet are held too) may send another: it holds fewer than READY_DEPTH, so the next one
        follows in the same key-up, and hears no other station's transmission."""
        return not self.busy and self.held + sent - self.offered < READY_DEPTH


@dataclass
class Part:
    """One frame of a transmission: it is lost when another transmission is on the air at any
    moment from `start` (the key-up for the first frame, else the previous frame's data end)
    to its `data_end`."""

    frame: bytes
    offered: float
    start: float
    data_end: float
    lost: bool = False
    interferers: list[Transmission] = field(default_factory=list)  # overlapping it


@dataclass
class Transmission:
    """One key-up: its frames back to back after `txdelay`, then `txtail`, until `end`."""

    station: str
    start: float
    end: float
    parts: list[Part]

    @property
    def data_end(self) -> float:
        return self.parts[-1].data_end


@dataclass(frozen=True)
class Delivery:
    """`frame`, sent by `sender`, reaches `station` at time `at`."""

    at: float
    station: str
    frame: bytes
    sender: str = ""


@dataclass
class _Station:
    radio: Radio
    duty: DutyCycle | None
    queue: deque[tuple[float, bytes, bool]] = field(default_factory=deque)
    queued_bytes: int = 0
    codel: CoDel | None = None
    stats: StationStats = field(default_factory=StationStats)
    sending: Transmission | None = None  # its transmission on the air
    attempt_pending: bool = False
    slot_waited: bool = False  # (slotwait) it has waited its slot on a free channel
    duty_waiting: float | None = None  # when the head frame began to wait for the duty cycle


def head(frame: bytes) -> str:
    """A frame's kind as the airtime count by head has it: its first HEAD bytes in hex, and
    `/small` for a frame of SMALL bytes or less (an acknowledgement beside full frames)."""
    return frame[:HEAD].hex() + ("/small" if len(frame) <= SMALL else "")


def _duty_cycle(radio: Radio) -> DutyCycle | None:
    return DutyCycle(radio.duty, radio.duty_window) if radio.duty else None


def _codel(radio: Radio) -> CoDel | None:
    return CoDel(*radio.codel) if radio.codel else None


def _overlaps(start: float, end: float, tx: Transmission) -> bool:
    return start < tx.end and tx.start < end


class Channel:
    """The shared channel and its stations' MACs (see the module docstring for the rules)."""

    def __init__(self, rng: random.Random, reception: Reception | None = None) -> None:
        self.rng = rng
        self.reception = reception or Reception()
        self.now = 0.0
        self.stations: dict[str, _Station] = {}
        self._air: list[Transmission] = []  # transmissions that may still matter
        self._events: list[tuple[float, int, str, Any]] = []
        self._order = itertools.count()
        self._out: list[Delivery] = []

    def join(self, name: str, radio: Radio) -> None:
        """Add a station, or give a joined one new settings (its queue and counts stay)."""
        station = self.stations.get(name)
        if station is None:
            self.stations[name] = _Station(radio, _duty_cycle(radio), codel=_codel(radio))
            return
        if radio.codel != station.radio.codel:
            station.codel = _codel(radio)
        if (radio.duty, radio.duty_window) != (station.radio.duty, station.radio.duty_window):
            station.duty = _duty_cycle(radio)
        station.radio = radio

    def stats(self, name: str) -> StationStats:
        return self.stations[name].stats

    def readiness(self, name: str) -> Readiness:
        """Station `name`'s Readiness at the channel's time (after advance())."""
        station = self.stations[name]
        tx = station.sending
        on_air = 0 if tx is None else sum(part.data_end > self.now for part in tx.parts)
        busy = tx is None and any(
            other.station != name and other.start <= self.now < other.end
            and self.reception.hears(other.station, name) for other in self._air)
        return Readiness(station.stats.offered, len(station.queue) + on_air, busy)

    def next_event(self) -> float | None:
        """When something next happens (None: nothing pending)."""
        return self._events[0][0] if self._events else None

    def offer(self, name: str, frame: bytes, now: float, lost: bool = False) -> list[Delivery]:
        """Station `name` wants to send `frame` at `now`; returns deliveries due by `now`.
        A `lost` frame (the sender's loss model lost it) takes its airtime, and can collide,
        but nobody receives it."""
        out = self.advance(now)
        station = self.stations[name]
        stats = station.stats
        stats.offered += 1
        if station.duty is not None and not station.duty.fits(station.radio.on_air(len(frame))):
            stats.too_long += 1
            return out
        if self._joins_burst(station, frame, now, lost):
            return out
        limit_bytes = station.radio.limit_bytes
        if len(station.queue) >= station.radio.limit or (
                limit_bytes is not None and station.queued_bytes + len(frame) > limit_bytes):
            stats.queue_full += 1
            return out
        station.queue.append((now, frame, lost))
        station.queued_bytes += len(frame)
        if station.sending is None and not station.attempt_pending:
            self._schedule(now, "attempt", name)
        return out

    def advance(self, now: float) -> list[Delivery]:
        """Run every event due by `now`; the frames delivered meanwhile."""
        while self._events and self._events[0][0] <= now:
            at, _, kind, what = heapq.heappop(self._events)
            self.now = max(self.now, at)
            if kind == "attempt":
                self.stations[what].attempt_pending = False
                self._attempt(what, at)
            elif kind == "data_end":
                self._data_end(*what)
            else:
                self._tx_end(what, at)
        self.now = max(self.now, now)
        out, self._out = self._out, []
        return out

    def _schedule(self, at: float, kind: str, what: Any) -> None:
        if kind == "attempt":
            self.stations[what].attempt_pending = True
        heapq.heappush(self._events, (at, next(self._order), kind, what))

    def _sensed_busy_until(self, name: str, at: float) -> float | None:
        """End of the transmissions `name` hears at `at` (None: it hears a free channel)."""
        delay = self.stations[name].radio.carrier_delay
        heard = [tx.end for tx in self._air
                 if tx.station != name and tx.start + delay <= at < tx.end
                 and self.reception.hears(tx.station, name)]
        return max(heard) if heard else None

    def _attempt(self, name: str, at: float) -> None:
        station = self.stations[name]
        if station.sending is not None or not station.queue:
            return
        radio = station.radio
        frame = station.queue[0][1]
        if station.duty is not None:
            allowed = station.duty.earliest(radio.on_air(len(frame)), at)
            if allowed > at:
                if station.duty_waiting is None:
                    station.duty_waiting = at
                    station.stats.duty_waits += 1
                self._schedule(allowed, "attempt", name)
                return
        busy = self._sensed_busy_until(name, at)
        if busy is not None:
            station.slot_waited = False
            self._schedule(busy, "attempt", name)
        elif radio.slotwait and not station.slot_waited:
            station.slot_waited = True
            self._schedule(at + radio.slottime, "attempt", name)
        elif radio.persist >= ALWAYS or self.rng.randrange(256) <= radio.persist:
            station.slot_waited = False
            self._transmit(name, at)
        else:
            self._schedule(at + radio.slottime, "attempt", name)

    def _transmit(self, name: str, at: float) -> None:
        """Key up and send the head frame, with up to `burst - 1` more queued ones."""
        station = self.stations[name]
        radio, stats = station.radio, station.stats
        if station.duty_waiting is not None:
            stats.duty_wait_time += at - station.duty_waiting
            station.duty_waiting = None
        tx = Transmission(name, at, at + radio.txdelay, [])
        while station.queue and len(tx.parts) < radio.burst:
            offered, frame, lost = station.queue[0]
            if tx.parts and station.duty is not None and station.duty.earliest(
                    tx.end - tx.start + radio.data_time(frame) + radio.txtail, at) > at:
                break
            if self._dequeue(station, at):
                if not tx.parts:
                    station.sending = tx
                    self._air.append(tx)
                    stats.airtime += radio.txdelay
                    stats.transmissions += 1
                self._add_part(station, tx, Part(frame, offered, 0.0, 0.0, lost))
        if not tx.parts:  # CoDel dropped all it had
            return
        if station.duty is not None:
            station.duty.record(tx.start, tx.end)
            stats.duty_peak = station.duty.peak

    def _dequeue(self, station: _Station, at: float) -> bool:
        """Take the head frame off the queue at `at`: False when CoDel drops it."""
        offered, frame, _ = station.queue.popleft()
        station.queued_bytes -= len(frame)
        codel = station.codel
        if codel is None:
            return True
        dropped = codel.drop(at, at - offered, station.queued_bytes)
        station.stats.codel_drops += dropped
        if not station.queue:
            codel.idle()
        return not dropped

    def _joins_burst(self, station: _Station, frame: bytes, now: float, lost: bool) -> bool:
        """Whether `frame` goes out in the station's transmission on the air (it has room in
        its burst and the data has not ended); a duty-cycled radio decides at key-up only."""
        tx = station.sending
        if (tx is None or station.queue or station.duty is not None
                or len(tx.parts) >= station.radio.burst or now > tx.data_end):
            return False
        self._add_part(station, tx, Part(frame, now, 0.0, 0.0, lost))
        return True

    def _add_part(self, station: _Station, tx: Transmission, part: Part) -> None:
        """Append `part` to `tx` (after its key-up or its last frame) and move its tail."""
        radio, stats = station.radio, station.stats
        start = tx.data_end if tx.parts else tx.start
        part.start = start
        airtime = radio.data_time(part.frame)
        part.data_end = max(start, tx.start + radio.txdelay) + airtime
        stats.count_head(part.frame, airtime)
        tx.parts.append(part)
        end = part.data_end + radio.txtail
        stats.airtime += end - tx.end
        tx.end = end
        stats.sent += 1
        stats.queueing += start - part.offered
        self._mark_collisions(tx)
        self._schedule(part.data_end, "data_end", (tx, part))
        self._schedule(tx.end, "tx_end", tx)

    def _mark_collisions(self, tx: Transmission) -> None:
        """Note every transmission each frame overlaps, both ways (`tx` just grew)."""
        for other in self._air:
            if other is tx or not _overlaps(tx.start, tx.end, other):
                continue
            for part, by in [*((p, other) for p in tx.parts), *((p, tx) for p in other.parts)]:
                if by not in part.interferers and _overlaps(part.start, part.data_end, by):
                    part.interferers.append(by)

    def _data_end(self, tx: Transmission, part: Part) -> None:
        stats = self.stations[tx.station].stats
        receivers = [] if part.lost else [
            name for name in self.stations if name != tx.station and self._receives(tx, part, name)]
        if receivers:
            stats.delivered += 1
        elif part.interferers:
            stats.collisions += 1
        elif part.lost:
            stats.lost += 1
        else:
            stats.missed += 1
        self._out.extend(Delivery(part.data_end, name, part.frame, tx.station)
                         for name in receivers)

    def _receives(self, tx: Transmission, part: Part, name: str) -> bool:
        """Whether station `name` decodes `part`: it hears the sender, is not sending itself
        meanwhile, the frame survives what else it hears (capture), and its pair's loss."""
        sender, receiver = self.stations[tx.station], self.stations[name]
        if not self.reception.hears(tx.station, name):
            return False
        interferers = [other for other in part.interferers
                       if other.station == name or self.reception.hears(other.station, name)]
        if any(other.station == name for other in interferers):
            return False  # half duplex: a station that sends hears nothing
        levels = [self.reception.level(other.station, name,
                                       self.stations[other.station].radio.level)
                  for other in interferers]
        wanted = self.reception.level(tx.station, name, sender.radio.level)
        if not survives(wanted, levels, receiver.radio.capture):
            return False
        loss = self.reception.loss(tx.station, name, receiver.radio.rxloss)
        if loss > 0 and self.rng.random() < loss:
            receiver.stats.rx_lost += 1
            return False
        receiver.stats.captured += bool(interferers)
        return True

    def _tx_end(self, tx: Transmission, at: float) -> None:
        if at < tx.end:  # a frame joined the burst: a later tx_end ends it
            return
        station = self.stations[tx.station]
        station.sending = None
        self._air = [t for t in self._air if t.end > tx.end]
        if station.queue and not station.attempt_pending:
            self._schedule(tx.end, "attempt", tx.station)
