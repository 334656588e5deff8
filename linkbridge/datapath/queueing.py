"""The link-aware queue at the top of the link side (`--queue`, docs/queue.md).

Packets from the tunnel wait here, above compression (dropping a compressed ACK would break
VJ's state), and a thread of the layer sends them when the link says it is ready
(SendReadiness), else at the pace of the link's own figures (SendTiming, or `--queue-rate`),
so that a slow link's backlog lives where it can be bounded and dropped from (wire/queue.py
decides what), not in the link's queue (a TNC's). A multipoint tunnel has a queue per peer,
all served in turn by one sender over their shared link. Frames from below pass up unchanged.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from linkbridge.datapath.counters import Counters
from linkbridge.datapath.endpoint import Endpoint, Resizing, SendReadiness
from linkbridge.wire.queue import LinkQueue

FrameTime = Callable[[int], float]
READY_RECHECK = 1.0  # s: a link not ready is asked again at least this often


class QueueCounters(Counters):
    """Packet counters of the layer (drops by reason among them); `as_dict` adds what waits
    now and the frame counters of the endpoint below."""

    def __init__(self, below: Endpoint, queue: LinkQueue) -> None:
        super().__init__()
        self._below = below
        self._queue = queue

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(),
                "queue": {"packets": self._queue.packets, "bytes": self._queue.bytes,
                          "round_trip": round(self._queue.round_trip, 3)},
                "frames": self._below.counters.as_dict()}


class LinkSender:
    """The thread that hands queued packets to one link: when the link is ready, if it says
    so (`readiness`), else once what the link was given before has at most `lead` seconds left
    (by `frame_time`): one frame's `lead` keeps a TNC keyed up from frame to frame, and no more
    waits there. A packet is charged by its size, then, when the layer it goes to is Resizing
    (compression), by the size of what that layer handed down for it. It serves its queues
    (one per peer of a multipoint tunnel) in turn, a packet each."""

    def __init__(self, name: str, frame_time: FrameTime, lead: float = 0.0,
                 clock: Callable[[], float] = time.monotonic,
                 readiness: SendReadiness | None = None) -> None:
        self._frame_time = frame_time
        self._lead = lead
        self.clock = clock
        self._readiness = readiness
        self.wake = threading.Condition()  # held while a queue changes
        self._lanes: deque[QueueingEndpoint] = deque()
        self._closed = False
        self._free_at = 0.0  # when the link is done with what it was given
        if readiness is not None:
            readiness.on_ready(self._notify)
        self._thread = threading.Thread(target=self._run, name=f"queue {name}", daemon=True)
        self._thread.start()

    def add(self, lane: QueueingEndpoint) -> None:
        with self.wake:
            self._lanes.append(lane)

    def remove(self, lane: QueueingEndpoint) -> None:
        """`lane` leaves (its peer's stack closed; what it holds is not sent); the thread
        ends with the last."""
        with self.wake:
            if lane in self._lanes:
                self._lanes.remove(lane)
            last = not self._lanes
        if last:
            self.stop()

    def _notify(self) -> None:
        with self.wake:
            self.wake.notify()

    def _next(self) -> tuple[QueueingEndpoint, bytes] | None:
        """The next queue's next packet once the link is free for it, or None when closed."""
        with self.wake:
            while not self._closed:
                now = self.clock()
                if self._readiness is not None:
                    if not self._readiness.ready():
                        self.wake.wait(READY_RECHECK)
                        continue
                elif self._free_at - now > self._lead:
                    self.wake.wait(self._free_at - now - self._lead)
                    continue
                for _ in range(len(self._lanes)):
                    lane = self._lanes[0]
                    self._lanes.rotate(-1)
                    packet = lane.queue.pop(now)
                    if packet is not None:
                        self._free_at = max(now, self._free_at) + self._frame_time(len(packet))
                        return lane, packet
                self.wake.wait()
        return None

    def _run(self) -> None:
        while (item := self._next()) is not None:
            lane, packet = item
            resizing = lane.resizing
            before = 0 if resizing is None else resizing.bytes_below()
            lane.below.send(packet)
            lane.counters.sent(len(packet))
            if resizing is not None:
                self._recharge(len(packet), resizing.bytes_below() - before)

    def _recharge(self, charged: int, sent: int) -> None:
        """A packet charged as `charged` bytes went down as `sent`: the link is free earlier
        (or later) by the difference."""
        with self.wake:
            self._free_at += self._frame_time(sent) - self._frame_time(charged)

    def stop(self) -> None:
        """End the thread (what still waits is not sent); safe to call twice."""
        with self.wake:
            self._closed = True
            self.wake.notify()
        if self._thread is not threading.current_thread():
            self._thread.join()


class QueueingEndpoint:
    """Wraps the link side (of one peer): send() queues (never blocks) for `sender` to hand
    down; receive() is the endpoint below's; close() takes the queue out of the sender's
    turns, the others' queues go on."""

    def __init__(self, below: Endpoint, queue: LinkQueue, sender: LinkSender) -> None:
        self.below = below
        self.name = f"queue+{below.name}"
        self.queue = queue
        self.sender = sender
        self.counters = QueueCounters(below, queue)
        self.resizing = below if isinstance(below, Resizing) else None
        sender.add(self)

    def send(self, packet: bytes) -> None:
        with self.sender.wake:
            drops = self.queue.push(packet, self.sender.clock())
            self.sender.wake.notify()
        for reason in drops:
            self.counters.drop(reason)

    def receive(self, timeout: float) -> list[bytes]:
        frames = self.below.receive(timeout)
        for frame in frames:
            self.counters.received(len(frame))
        return frames

    def close(self) -> None:
        """Leave the sender (the last queue to leave ends its thread), close below."""
        self.sender.remove(self)
        self.below.close()


def rate_frame_time(rate: float) -> FrameTime:
    """A frame's time at `rate` bit/s."""
    return lambda size: size * 8 / rate
