"""The loss-repair layer right above a link (`--repair arq|fec|auto`): wire/repair.py's state
machine joined to the link's clock and threads.

Its timers (retransmissions, acknowledgements, parity into idle airtime, gaps given up) run
inside receive(), which waits on the link no longer than the next of them: the layer is not
Pollable, so the bridge gives its direction a thread that calls receive() in a loop. One lock
keeps the machine and the link's send side to one thread at a time. A frame the layer gives
up is a `Lost` event for the layers above (on_loss, as a framing decoder's) and a counted
drop; the link's own loss reports are not passed on, since the layer may still repair. A
frame the link drops on send (its counted drop: a full queue) is taken back, never repaired:
that loss is TCP's congestion signal.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from linkbridge.datapath.counters import Counters
from linkbridge.datapath.endpoint import Endpoint, PathMtu, SendReadiness, SendTiming
from linkbridge.wire import drops
from linkbridge.wire.repair import OVERHEAD, LinkRepair, Settings

READY_POLL = 0.05  # s: how often an acknowledgement that waits asks whether the link is ready


class RepairCounters(Counters):
    """Packet counters of the layer; `as_dict` adds the repair figures and the frames below."""

    def __init__(self, below: Endpoint, status: Callable[[], dict[str, object]]) -> None:
        super().__init__()
        self._below = below
        self._status = status

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(), "repair": self._status(),
                "frames": self._below.counters.as_dict()}


class RepairingEndpoint:
    """Wraps an open link: frames out are numbered (and acknowledged, retransmitted or
    protected by parity, per `mode`), frames in are taken once, in order for ARQ. `mtu`: the
    link's largest frame, which an acknowledgement riding on a data frame must fit in; a link
    with figures (SendTiming that knows its rate) says how long each frame keeps it busy, so
    that parity goes into its idle airtime (over any other, parity goes as it is made). Over
    a link that says when it is ready (SendReadiness: a half-duplex radio) an acknowledgement
    waits until it is, asking every READY_POLL, so that it says all the peer's transmission
    brought and the layer above may send a frame for it to ride on first."""

    def __init__(self, below: Endpoint, mode: str, settings: Settings | None = None,
                 clock: Callable[[], float] = time.monotonic, mtu: int | None = None) -> None:
        self.below = below
        self.name = f"repair+{below.name}"
        self._lock = threading.Lock()
        self.counters: Counters = RepairCounters(below, self._status)
        self.machine = LinkRepair(mode, settings, self.counters.drop, mtu, _frame_time(below))
        self._clock = clock
        self._readiness = below if isinstance(below, SendReadiness) else None
        self._listeners: list[Callable[[str], None]] = []

    def send(self, packet: bytes) -> None:
        with self._lock:
            now = self._clock()
            data, *parity = self.machine.send(packet, now)
            before = self._queue_drops()
            self.below.send(data)
            if self._queue_drops() > before:  # dropped before it left (a full queue)
                self.machine.withdraw(now)
                return
            self._put(parity)
        self.counters.sent(len(packet))

    def receive(self, timeout: float) -> list[bytes]:
        ready = self._ready()
        deadline = self.machine.deadline(ready)
        if deadline is not None:
            timeout = min(timeout, max(0.0, deadline - self._clock()))
        if not ready and self.machine.ack_waiting:
            timeout = min(timeout, READY_POLL)
        frames = self.below.receive(timeout)
        ready = self._ready()
        with self._lock:
            now = self._clock()
            items: list[bytes | None] = []
            for frame in frames:
                items += self.machine.receive(frame, now)
            due, given_up = self.machine.tick(now, ready)
            self._put(due)
        packets = []
        for item in items + given_up:
            if item is None:  # a frame given up: a Lost event above
                self.counters.drop(drops.REPAIR_UNREPAIRED)
                for listener in self._listeners:
                    listener(drops.REPAIR_UNREPAIRED)
            else:
                self.counters.received(len(item))
                packets.append(item)
        return packets

    def on_loss(self, listener: Callable[[str], None]) -> None:
        """LossReporter: `listener(reason)` for each frame the layer gave up."""
        self._listeners.append(listener)

    def path_frame_size(self, frame_size: int) -> int:
        below = self.below.path_frame_size(frame_size) if isinstance(self.below, PathMtu) \
            else frame_size
        return below - OVERHEAD

    def close(self) -> None:
        self.below.close()

    def _ready(self) -> bool:
        return self._readiness is None or self._readiness.ready()

    def _put(self, frames: Sequence[bytes]) -> None:
        for frame in frames:
            before = self._queue_drops()
            self.below.send(frame)
            if self._queue_drops() > before:
                self.machine.dropped(frame)

    def _queue_drops(self) -> int:
        """The frames the link dropped for a full queue (its reason ends in `queue_full`; a
        loss it counts on send, as sim: does, is the channel's and gets repaired)."""
        return sum(count for reason, count in self.below.counters.drops.items()
                   if reason.endswith(drops.QUEUE_FULL))

    def _status(self) -> dict[str, object]:
        with self._lock:
            return self.machine.status()


def _frame_time(link: Endpoint) -> Callable[[int], float] | None:
    """How long a frame of so many bytes keeps `link` busy; None when it does not say (a
    SendTiming link without a rate answers 0.0)."""
    if isinstance(link, SendTiming) and link.frame_time(1) > 0:
        return link.frame_time
    return None
