"""A shared half-duplex radio channel: p-persistent CSMA, collisions, duty cycle. Pure logic.

Stations join with their radio's settings, offer frames at a time, and the channel says what
reaches whom and when. Time is passed in (`advance(now)`, `offer(..., now)`) and the persistence
draws come from a generator passed in, so a run is reproducible. The medium process
(medium.py) drives it on the real clock; tests drive it on a simulated one.

The rules:
- A station with a frame senses the channel. It hears a transmission of another station only
  from one slot (its `slottime`) after that transmission started (the carrier-detect delay), so
  frames that start within one slot of each other both go on the air.
- Busy: it waits until the channel is free. Free: it draws 0..255 and transmits when the draw
  is <= `persist` (KISS TNCs' rule: probability (persist + 1) / 256), else it waits one slot
  and senses again.
- A transmission keys up for `txdelay`, sends the frame for its airtime, then holds the carrier
  for `txtail`; all of it counts as time on air (and for the duty cycle).
- A frame is lost to every receiver (a collision, counted for its sender) when another
  transmission is on the air at any moment between its start and the end of its data; else
  every other station receives it when its data ends. A transmitting station hears nothing.
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

from linkbridge_sim.duty import DutyCycle

Airtime = Callable[[int], float]  # seconds on air of a frame of so many bytes (data only)
ALWAYS = 255  # persist value that always transmits on a free channel


@dataclass(frozen=True)
class Radio:
    """One station's radio: how long its frames take and how it shares the channel."""

    airtime: Airtime
    persist: int = 63
    slottime: float = 0.010
    txdelay: float = 0.0
    txtail: float = 0.0
    duty: float | None = None  # share of any duty_window it may be on the air
    duty_window: float = 3600.0
    limit: int = 1000

    def on_air(self, size: int) -> float:
        """Time on air of a `size`-byte frame: key-up, data, tail."""
        return self.txdelay + self.airtime(size) + self.txtail


@dataclass
class StationStats:
    """What happened to one station's frames."""

    offered: int = 0
    sent: int = 0  # frames put on the air
    delivered: int = 0  # sent without collision
    collisions: int = 0  # sent but lost to a collision
    queue_full: int = 0
    too_long: int = 0  # longer on air than the duty cycle ever allows
    airtime: float = 0.0  # seconds on the air
    duty_waits: int = 0  # frames that had to wait for the duty cycle
    duty_wait_time: float = 0.0
    queueing: float = 0.0  # sum over sent frames of offer -> start of transmission
    duty_peak: float = 0.0  # most airtime in any duty window (0 without a duty cycle)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Transmission:
    station: str
    start: float
    data_end: float
    end: float
    frame: bytes
    collided: bool = False


@dataclass(frozen=True)
class Delivery:
    """`frame` reaches `station` at time `at`."""

    at: float
    station: str
    frame: bytes


@dataclass
class _Station:
    radio: Radio
    duty: DutyCycle | None
    queue: deque[tuple[float, bytes]] = field(default_factory=deque)
    stats: StationStats = field(default_factory=StationStats)
    transmitting: bool = False
    attempt_pending: bool = False
    duty_waiting: float | None = None  # when the head frame began to wait for the duty cycle


def _duty_cycle(radio: Radio) -> DutyCycle | None:
    return DutyCycle(radio.duty, radio.duty_window) if radio.duty else None


class Channel:
    """The shared channel and its stations' MACs (see the module docstring for the rules)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
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
            self.stations[name] = _Station(radio, _duty_cycle(radio))
            return
        if (radio.duty, radio.duty_window) != (station.radio.duty, station.radio.duty_window):
            station.duty = _duty_cycle(radio)
        station.radio = radio

    def stats(self, name: str) -> StationStats:
        return self.stations[name].stats

    def next_event(self) -> float | None:
        """When something next happens (None: nothing pending)."""
        return self._events[0][0] if self._events else None

    def offer(self, name: str, frame: bytes, now: float) -> list[Delivery]:
        """Station `name` wants to send `frame` at `now`; returns deliveries due by `now`."""
        out = self.advance(now)
        station = self.stations[name]
        stats = station.stats
        stats.offered += 1
        if station.duty is not None and not station.duty.fits(station.radio.on_air(len(frame))):
            stats.too_long += 1
            return out
        if len(station.queue) >= station.radio.limit:
            stats.queue_full += 1
            return out
        station.queue.append((now, frame))
        if not station.transmitting and not station.attempt_pending:
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
                self._data_end(what)
            else:
                self._tx_end(what)
        self.now = max(self.now, now)
        out, self._out = self._out, []
        return out

    def _schedule(self, at: float, kind: str, what: Any) -> None:
        if kind == "attempt":
            self.stations[what].attempt_pending = True
        heapq.heappush(self._events, (at, next(self._order), kind, what))

    def _sensed_busy_until(self, name: str, at: float) -> float | None:
        """End of the transmissions `name` hears at `at` (None: it hears a free channel)."""
        slot = self.stations[name].radio.slottime
        heard = [tx.end for tx in self._air
                 if tx.station != name and tx.start + slot <= at < tx.end]
        return max(heard) if heard else None

    def _attempt(self, name: str, at: float) -> None:
        station = self.stations[name]
        if station.transmitting or not station.queue:
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
            self._schedule(busy, "attempt", name)
        elif radio.persist >= ALWAYS or self.rng.randrange(256) <= radio.persist:
            self._transmit(name, at)
        else:
            self._schedule(at + radio.slottime, "attempt", name)

    def _transmit(self, name: str, at: float) -> None:
        station = self.stations[name]
        offered, frame = station.queue.popleft()
        radio, stats = station.radio, station.stats
        if station.duty_waiting is not None:
            stats.duty_wait_time += at - station.duty_waiting
            station.duty_waiting = None
        data_end = at + radio.txdelay + radio.airtime(len(frame))
        tx = Transmission(name, at, data_end, data_end + radio.txtail, frame)
        for other in self._air:
            if other.start < tx.end and tx.start < other.end:
                if other.start < tx.data_end and tx.start < other.end:
                    tx.collided = True
                if tx.start < other.data_end:
                    other.collided = True
        self._air.append(tx)
        station.transmitting = True
        stats.sent += 1
        stats.airtime += tx.end - tx.start
        stats.queueing += at - offered
        if station.duty is not None:
            station.duty.record(tx.start, tx.end)
            stats.duty_peak = station.duty.peak
        self._schedule(data_end, "data_end", tx)
        self._schedule(tx.end, "tx_end", tx)

    def _data_end(self, tx: Transmission) -> None:
        stats = self.stations[tx.station].stats
        if tx.collided:
            stats.collisions += 1
            return
        stats.delivered += 1
        self._out.extend(Delivery(tx.data_end, name, tx.frame)
                         for name in self.stations if name != tx.station)

    def _tx_end(self, tx: Transmission) -> None:
        station = self.stations[tx.station]
        station.transmitting = False
        self._air = [t for t in self._air if t.end > tx.end]
        if station.queue and not station.attempt_pending:
            self._schedule(tx.end, "attempt", tx.station)
