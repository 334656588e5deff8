"""The data path: moving packets between the tunnel side and the link side, both directions.

Light traffic is moved by one thread that polls both endpoints, like a classic event loop: a
packet written into the tunnel that makes the kernel answer at once (an echo reply, a TCP ACK)
finds that answer queued before the write returns, and the same thread forwards it without a
thread wake-up. Each round trip thus costs as few wake-ups as a single-process relay.

Under load (a read returns a large batch) the direction is handed to its own thread, which moves
it until its packet rate drops and then hands it back: the two directions then run in parallel,
each thread spending most of its time in system calls with the GIL released.

What each endpoint can do beyond Endpoint is declared by the protocols of endpoint.py: a
Pollable one takes part in the shared poll, any other (a wrapper that buffers) always has its own
thread, which waits in receive(); a BatchSender sink gets each batch in one call (the UDP socket
sends runs of equal-size packets with one system call). When the tunnel side is a TUN device and
the link side a UDP socket (RawPortProviders of a DevicePort and a SocketPort), the poller runs
the lean loop of linkbridge/datapath/lean.py instead: the same moves, counters and drops, with
what the endpoints' methods do per packet written inline (also under the encrypt layer, a
SealedPortProvider, which then seals and opens each packet in the loop); with the offload layer
(an OffloadLayer: offloading.OffloadingTunnel) on the tunnel side, its twin offload_poller().
"""

from __future__ import annotations

import functools
import logging
import os
import select
import threading
import time
from collections.abc import Callable

from linkbridge.datapath.endpoint import (
    BatchSender,
    Endpoint,
    OffloadLayer,
    Pollable,
    RawPortProvider,
    RunSink,
    RunSource,
    SealedPortProvider,
    SendsOnItself,
)
from linkbridge.datapath.lean import lean_poller, offload_poller
from linkbridge.datapath.polling import sync_polled
from linkbridge.datapath.rawport import DevicePort, RawPort, SealedPort, SocketPort
from linkbridge.errors import LinkbridgeError
from linkbridge.wire.packet import drop_reason, packet_problem

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.2  # seconds a thread waits before it looks at the stop flag again
HAND_OFF_BATCH = 8  # a read this large means load: the direction gets its own thread
HAND_BACK_WINDOW = 0.05  # seconds over which a thread measures its direction's packet rate
HAND_BACK_PACKETS = 100  # fewer packets than this in a window: the thread hands it back
Check = Callable[[bytes], str | None]


class Direction:
    """Packets from `source` to `sink`, checked by `check` first when given.

    At any moment exactly one thread moves a direction: the shared poller while `own_thread` is
    clear, the direction's thread while it is set.
    """

    def __init__(self, name: str, source: Endpoint, sink: Endpoint, check: Check | None) -> None:
        self.name = name
        self.source = source
        self.sink = sink
        self.check = check
        self.fd: int | None = source.fileno() if isinstance(source, Pollable) else None
        self._receive = source.receive
        self._send_many: Callable[[list[bytes]], None] | None = (
            sink.send_many if isinstance(sink, BatchSender) else None)
        self._sent_on = source.sent_on if isinstance(source, SendsOnItself) else None
        self._runs = (source.receive_runs, sink.send_runs) \
            if isinstance(source, RunSource) and isinstance(sink, RunSink) else None
        self.own_thread = threading.Event()
        self.hand_offs = 0  # how often load made the poller hand this direction to its thread
        if self.fd is None:
            self.own_thread.set()

    def hand_off(self) -> None:
        """Load: from now on this direction's own thread moves it."""
        self.hand_offs += 1
        self.own_thread.set()

    def move(self, timeout: float) -> int:
        """Forward what arrives within `timeout` seconds; the number of packets read."""
        if self._runs is not None:
            receive_runs, send_runs = self._runs
            return send_runs(receive_runs(timeout), self.check, self.source.counters)
        packets = self._receive(timeout)
        passed = packets
        if self.check is not None:
            passed = []
            for packet in packets:
                problem = self.check(packet)
                if problem is None:
                    passed.append(packet)
                else:
                    self.source.counters.drop(drop_reason(problem))
        if self._send_many is not None and len(passed) > 1:
            self._send_many(passed)
        else:
            send = self.sink.send
            for packet in passed:
                send(packet)
        return len(packets) if self._sent_on is None else len(packets) + self._sent_on()


class Bridge:
    """Joins the tunnel side (a TUN device, or local ports feeding a tunnel) to the link side.

    Every packet travelling towards the tunnel is checked first; malformed ones are counted as
    drops on the link side. A fatal error in any thread stops them all and is re-raised by wait().
    """

    def __init__(self, tunnel_side: Endpoint, link_side: Endpoint,
                 check: Check = packet_problem) -> None:
        self.tunnel_side = tunnel_side
        self.link_side = link_side
        self.stop = threading.Event()
        self._error: LinkbridgeError | None = None
        self._directions = (Direction("to-link", tunnel_side, link_side, None),
                            Direction("to-tunnel", link_side, tunnel_side, check))
        self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        device, link = raw_port(tunnel_side), raw_port(link_side)
        sealed = sealed_port(link_side) if isinstance(device, DevicePort) else None
        poller: Callable[[], None] = self._poller
        self.lean = False  # whether the poller runs the lean loop (a TUN device, a UDP socket)
        if sealed is not None:
            link = sealed.port
        if isinstance(device, DevicePort) and isinstance(link, SocketPort):
            self.lean = True
            poller = functools.partial(
                lean_poller, device, link, *self._directions, check, self._wake,
                self.stop.is_set, sealed)
        elif isinstance(tunnel_side, OffloadLayer) and isinstance(link, SocketPort) \
                and isinstance(link_side, BatchSender):
            self.lean = True
            poller = functools.partial(
                offload_poller, tunnel_side, link, link_side.send_many, *self._directions,
                check, self._wake, self.stop.is_set)
        self._threads = [threading.Thread(target=self._guarded, args=(poller,),
                                          name="poller", daemon=True)]
        self._threads += [threading.Thread(target=self._guarded, args=(self._own, direction),
                                           name=direction.name, daemon=True)
                          for direction in self._directions]

    @property
    def hand_offs(self) -> dict[str, int]:
        """Per direction, how often load moved it from the shared poller to its own thread."""
        return {direction.name: direction.hand_offs for direction in self._directions}

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def wait(self) -> None:
        """Block until stopped (by close() or a fatal error); re-raise a fatal error."""
        while not self.stop.wait(0.5):
            pass
        self.close()
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        self.stop.set()
        self._notify_poller()
        for thread in self._threads:
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join()
        if self._wake >= 0:
            os.close(self._wake)
            self._wake = -1

    def _notify_poller(self) -> None:
        if self._wake >= 0:
            os.eventfd_write(self._wake, 1)

    def _poller(self) -> None:
        """Move every direction that has no thread of its own, waiting on all at once."""
        poll = select.poll()
        poll.register(self._wake, select.POLLIN)
        by_fd = {d.fd: d for d in self._directions if d.fd is not None}
        registered: set[int] = set()
        stopped, wake = self.stop.is_set, self._wake
        regroup = True  # the set of directions polled here may have changed
        while not stopped():
            if regroup:
                regroup = False
                sync_polled(poll, registered, by_fd.items())
            for fd, _events in poll.poll(POLL_INTERVAL * 1000):
                if fd == wake:
                    os.eventfd_read(wake)
                    regroup = True
                    continue
                direction = by_fd[fd]
                if direction.move(0) >= HAND_OFF_BATCH:
                    direction.hand_off()
                    regroup = True

    def _own(self, direction: Direction) -> None:
        """Move `direction` in this thread while it is handed over; hand it back when slow."""
        while not self.stop.is_set():
            if not direction.own_thread.wait(POLL_INTERVAL):
                continue
            if direction.fd is None:
                direction.move(POLL_INTERVAL)
                continue
            moved, window_end = 0, time.monotonic() + HAND_BACK_WINDOW
            while not self.stop.is_set():
                moved += direction.move(HAND_BACK_WINDOW)
                now = time.monotonic()
                if now >= window_end:
                    if moved < HAND_BACK_PACKETS:
                        break
                    moved, window_end = 0, now + HAND_BACK_WINDOW
            direction.own_thread.clear()
            self._notify_poller()

    def _guarded(self, body: Callable[..., None], *args: object) -> None:
        """Run a thread's body; a fatal error is kept for wait() and stops every thread."""
        try:
            body(*args)
        except LinkbridgeError as exc:
            self._error = exc
        except Exception as exc:
            log.exception("unexpected error in the data path (%s)", threading.current_thread().name)
            self._error = LinkbridgeError(f"data path: {exc}")
        finally:
            self.stop.set()
            self._notify_poller()


def raw_port(endpoint: Endpoint) -> RawPort | None:
    """`endpoint`'s descriptor for the lean loop, when it provides one."""
    return endpoint.raw_port() if isinstance(endpoint, RawPortProvider) else None


def sealed_port(endpoint: Endpoint) -> SealedPort | None:
    """`endpoint` as a sealing layer over a UDP socket for the lean loop, when it is one."""
    return endpoint.sealed_port() if isinstance(endpoint, SealedPortProvider) else None
