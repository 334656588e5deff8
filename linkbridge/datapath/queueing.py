"""The link-aware queue at the top of the link side (`--queue`, docs/queue.md).

Packets from the tunnel wait here, above compression (dropping a compressed ACK would break
VJ's state), and a thread of the layer sends them when the link says it is ready
(SendReadiness), else at the pace of the link's own figures (SendTiming, or `--queue-rate`),
so that a slow link's backlog lives where it can be bounded and dropped from (wire/queue.py
decides what), not in the link's queue (a TNC's). Frames from below pass up unchanged.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from linkbridge.datapath.counters import Counters
from linkbridge.datapath.endpoint import Endpoint, SendReadiness
from linkbridge.wire.queue import LinkQueue

FrameTime = Callable[[int], float]


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


class QueueingEndpoint:
    """Wraps the link side: send() queues (never blocks), a sender thread hands the next
    packet down when the link is ready, if it says so (`readiness`), else once what the link
    was given before has at most `lead` seconds left (by `frame_time`): one frame's `lead`
    keeps a TNC keyed up from frame to frame, and no more waits there; receive() is the
    endpoint below's."""

    def __init__(self, below: Endpoint, queue: LinkQueue, frame_time: FrameTime,
                 lead: float = 0.0, clock: Callable[[], float] = time.monotonic,
                 readiness: SendReadiness | None = None) -> None:
        self.below = below
        self.name = f"queue+{below.name}"
        self._queue = queue
        self._frame_time = frame_time
        self._lead = lead
        self._clock = clock
        self.counters = QueueCounters(below, queue)
        self._ready = threading.Condition()
        self._closed = False
        self._free_at = 0.0  # when the link is done with what it was given
        self._readiness = readiness
        if readiness is not None:
            readiness.on_ready(self._wake)
        self._thread = threading.Thread(target=self._run, name=f"queue {below.name}",
                                        daemon=True)
        self._thread.start()

    def send(self, packet: bytes) -> None:
        with self._ready:
            drops = self._queue.push(packet, self._clock())
            self._ready.notify()
        for reason in drops:
            self.counters.drop(reason)

    def _wake(self) -> None:
        with self._ready:
            self._ready.notify()

    def _next(self) -> bytes | None:
        """The next packet once the link is free for it, or None when closed."""
        with self._ready:
            while not self._closed:
                now = self._clock()
                if self._readiness is not None:
                    if not self._readiness.ready():
                        self._ready.wait()
                        continue
                elif self._free_at - now > self._lead:
                    self._ready.wait(self._free_at - now - self._lead)
                    continue
                packet = self._queue.pop(now)
                if packet is not None:
                    self._free_at = max(now, self._free_at) + self._frame_time(len(packet))
                    return packet
                self._ready.wait()
        return None

    def _run(self) -> None:
        while (packet := self._next()) is not None:
            self.below.send(packet)
            self.counters.sent(len(packet))

    def receive(self, timeout: float) -> list[bytes]:
        frames = self.below.receive(timeout)
        for frame in frames:
            self.counters.received(len(frame))
        return frames

    def stop(self) -> None:
        """End the sender thread (what still waits is not sent); safe to call twice."""
        with self._ready:
            self._closed = True
            self._ready.notify()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def close(self) -> None:
        self.stop()
        self.below.close()


def rate_frame_time(rate: float) -> FrameTime:
    """A frame's time at `rate` bit/s."""
    return lambda size: size * 8 / rate
