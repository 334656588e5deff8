"""The encrypt layer between the tunnel and a link (`--private-key`, `--peer-public-key`).

Packets go down through `SecureChannel.seal()` (wire/secure.py) to the link below (the
fragmentation layer when there is one); frames come up through `SecureChannel.open_run()` and
`open()`, so nothing above this layer sees a byte that did not authenticate.

Two locks keep the directions apart: opening the current session's data frames touches only
what the receiving side owns and runs under none, so one thread opens while another seals
(pyca releases the GIL inside the cipher); everything else (sealing, the cheap checks of
handshake messages, timers, and the link's send side) runs under one lock. The handshake
thread does the Diffie-Hellman work of handshakes outside that lock (the data path never
waits for it), resends unanswered initiations and ends expired sessions (a multipoint
tunnel's peers share one such thread: datapath/handshakes.py), so the layer is
Pollable whenever the link below is: light traffic then takes the bridge's shared poll,
without a thread of its own. With `--state-dir` that thread also keeps the peer's newest
handshake timestamp there (datapath/peerstate.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence

from linkbridge.datapath.ciphercost import measured_costs
from linkbridge.datapath.counters import Counters
from linkbridge.datapath.endpoint import (
    BatchSender,
    Endpoint,
    Pollable,
    RawPortProvider,
    ReturnPath,
    Vouching,
)
from linkbridge.datapath.handshakes import TICK_INTERVAL, HandshakeScheduler
from linkbridge.datapath.pathmtu import path_frame_size
from linkbridge.datapath.peerstate import TimestampStore
from linkbridge.datapath.rawport import SealedPort, SocketPort
from linkbridge.wire.ciphers import COST_STEPS, Costs
from linkbridge.wire.secure import (
    CIPHERS,
    OVERHEAD,
    SecureChannel,
    StaticKeys,
    Timers,
)
from linkbridge.wire.stack import Encrypt

log = logging.getLogger("linkbridge")

EVENT_LOG_INTERVAL = 30.0  # seconds between two log lines of the same kind of event
AUTO = "auto"
CIPHER_CHOICES = (AUTO, *CIPHERS)


def allowed_ciphers(choice: str) -> frozenset[str]:
    """The transport ciphers a side offers for `--cipher choice`: `auto` offers every one (the
    handshake takes the one both sides measured cheapest), a cipher's name only that one."""
    return frozenset(CIPHERS) if choice == AUTO else frozenset({choice})


def describe_costs(costs: Costs) -> str:
    """The measured costs as a log line's words."""
    return ", ".join(f"{name} {2 ** (cost / COST_STEPS) / 1000:.2f} us"
                     for name, cost in costs.items())


def open_layer(below: Endpoint, options: Encrypt, stack: contextlib.ExitStack,
               scheduler: HandshakeScheduler | None = None) -> EncryptingEndpoint:
    """The layer over `below` (open), with its first initiation sent and its handshake work
    running until `stack` closes, in a thread of its own or on `scheduler`'s; Pollable when
    `below` is. The ciphers' costs are measured now, for the handshakes to choose by.
    ConfigError when the state directory cannot be used."""
    store = (TimestampStore(options.state_dir, options.keys.peer_public, options.state_owner)
             if options.state_dir else None)
    pollable = isinstance(below, Pollable)
    kind = PollableEncryptingEndpoint if pollable else EncryptingEndpoint
    costs = measured_costs()
    log.info("%s: cipher costs per full packet sealed and opened: %s", below.name,
              describe_costs(costs))
    endpoint = kind(below, options.keys, options.timers, store, costs, scheduler=scheduler)
    stack.callback(endpoint.stop_timers)
    endpoint.start()
    return endpoint


class EncryptCounters(Counters):
    """Packet counters of the layer; `as_dict` adds the session state and the frames below."""

    def __init__(self, below: Endpoint, status: Callable[[], dict[str, object]]) -> None:
        super().__init__()
        self._below = below
        self._status = status

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(), "encryption": self._status(),
                "frames": self._below.counters.as_dict()}


class EncryptingEndpoint:
    """Wraps an open link (or fragmentation layer): packets out are sealed, frames in are
    authenticated and opened. Drops (`auth`, `replay`, `handshake_*`...) count here. Passes on
    PathMtu: a frame below is a packet here plus OVERHEAD."""

    def __init__(self, below: Endpoint, keys: StaticKeys, timers: Timers,
                 store: TimestampStore | None = None, costs: Costs | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 random: Callable[[int], bytes] = os.urandom,
                 wall_clock: Callable[[], int] = time.time_ns,
                 scheduler: HandshakeScheduler | None = None) -> None:
        self.below = below
        self._scheduler = scheduler
        self.name = f"encrypt+{below.name}"
        self._clock = clock
        self._lock = threading.Lock()  # the channel but its receiving side, the link's sends
        self.counters: Counters = EncryptCounters(below, self._status)
        self._store = store
        self.channel = SecureChannel(
            keys, timers, self.counters.drop, random, wall_clock,
            below.return_address if isinstance(below, ReturnPath) else None,
            store.load() if store is not None else b"", costs)
        self._send_many: Callable[[list[bytes]], None] | None = (
            below.send_many if isinstance(below, BatchSender) else None)
        self._logged: dict[str, float] = {}
        self._handshakes = 0
        self._own_scheduler = scheduler is None  # then start() makes one for this layer alone
        if isinstance(below, Vouching):  # a multipoint peer's port: it roams on our word
            below.vouch_with(self.vouches)

    def start(self) -> None:
        """Start the handshake work (steps on the scheduler given, or on one of this layer's
        own, a thread) with the first initiation to send (a restarted side renews the session
        by itself)."""
        with self._lock:
            self.channel.start(self._clock())
            if self._scheduler is None:
                self._scheduler = HandshakeScheduler(self.name)
        self._scheduler.add(self)

    def send(self, packet: bytes) -> None:
        with self._lock:
            self._put(self.channel.seal(packet, self._clock()))
            self._wake_for_work()
        self.counters.sent(len(packet))

    def send_many(self, packets: Sequence[bytes]) -> None:
        """Seal a batch and hand it down in one call (runs of equal size stay equal: UDP GSO)."""
        with self._lock:
            self._put(self.channel.seal_many(packets, self._clock()))
            self._wake_for_work()
        counters = self.counters
        counters.tx_packets += len(packets)
        counters.tx_bytes += sum(map(len, packets))

    def seal_frame(self, packet: bytes) -> bytes | None:
        """The frame of `packet` on the current session, for the caller to send (the lean
        loop); None when the packet took send()'s way (no session yet, time to renew)."""
        with self._lock:
            frame = self.channel.seal_current(packet, self._clock())
        if frame is None:
            self.send(packet)
            return None
        counters = self.counters
        counters.tx_packets += 1
        counters.tx_bytes += len(packet)
        return frame

    def receive(self, timeout: float) -> list[bytes]:
        return self.open_frames(self.below.receive(timeout))

    def open_frame(self, frame: bytes) -> bytes | None:
        """The packet of one frame from the link; None for a drop, a keepalive, a handshake
        message (answered here)."""
        packet = self.channel.open_current(frame, self._clock())
        if packet is None:
            packets = self.open_frames((frame,))
            return packets[0] if packets else None
        if not packet:
            return None
        counters = self.counters
        counters.rx_packets += 1
        counters.rx_bytes += len(packet)
        return packet

    def open_frames(self, frames: Sequence[bytes]) -> list[bytes]:
        """The packets of frames from the link, in order (see open_frame())."""
        channel, now = self.channel, self._clock()
        packets: list[bytes] = []
        at = channel.open_run(frames, 0, packets, now)
        if at < len(frames):  # handshakes, another session, drops: under the lock
            with self._lock:
                rest, out = channel.open_many(frames[at:], now)
                self._put(out)
                self._wake_for_work()
                self._report(now)
            packets += rest
        counters = self.counters
        counters.rx_packets += len(packets)
        counters.rx_bytes += sum(map(len, packets))
        return packets

    def sealed_port(self) -> SealedPort | None:
        """This layer for the lean loop, over the link's SocketPort (None without one)."""
        below = self.below
        port = below.raw_port() if isinstance(below, RawPortProvider) else None
        if not isinstance(port, SocketPort):
            return None
        return SealedPort(port, self.counters, self.seal_frame, self.open_frame, self.open_frames)

    def vouches(self, frame: bytes) -> bool:
        """Whether `frame` authenticates under the peer's session, unseen so far (it changes
        nothing: SecureChannel.vouches)."""
        return self.channel.vouches(frame, self._clock())

    def path_frame_size(self, frame_size: int) -> int:
        """The largest packet this layer seals into a frame the path below sends whole."""
        return min(frame_size, path_frame_size(self.below, frame_size + OVERHEAD) - OVERHEAD)

    def close(self) -> None:
        self.stop_timers()
        self.below.close()

    def stop_timers(self) -> None:
        scheduler = self._scheduler
        if scheduler is None:
            return  # never started
        scheduler.remove(self)
        if self._own_scheduler:
            scheduler.close()

    def _wake_for_work(self) -> None:
        """Wake the handshake thread when the channel has a job for it (the lock is held)."""
        if self.channel.work_waiting and self._scheduler is not None:
            self._scheduler.wake(self)  # before start(), start() steps it at once

    def handshake_step(self) -> float:
        """The channel's handshake jobs, their Diffie-Hellman work outside the lock, and its
        timers (retries, expiry); the seconds until the next step is due."""
        self._run_jobs()
        with self._lock:
            now = self._clock()
            self._put(self.channel.tick(now))
            self._report(now)
            deadline = self.channel.next_deadline()
            if self.channel.work_waiting:
                deadline = now
        return TICK_INTERVAL if deadline is None else min(TICK_INTERVAL,
                                                          max(0.0, deadline - now))

    def _run_jobs(self) -> None:
        channel = self.channel
        while True:
            with self._lock:
                job = channel.take_job(self._clock())
            if job is None:
                return
            job.run()
            with self._lock:
                now = self._clock()
                self._put(channel.finish(job, now))
                self._report(now)
                newest = channel.newest_timestamp
            if self._store is not None:
                self._store.save(newest)

    def _put(self, frames: list[bytes]) -> None:
        """Send frames down (the lock is held)."""
        if self._send_many is not None and len(frames) > 1:
            self._send_many(frames)
        else:
            for frame in frames:
                self.below.send(frame)

    def _status(self) -> dict[str, object]:
        with self._lock:
            return self.channel.status(self._clock())

    def _report(self, now: float) -> None:
        """Log the channel's events, each kind at most once per EVENT_LOG_INTERVAL (the lock is
        held)."""
        channel = self.channel
        if channel.handshakes != self._handshakes:
            level = logging.INFO if self._handshakes == 0 else logging.DEBUG
            self._handshakes = channel.handshakes
            log.log(level, "%s: handshake complete, session keys fresh (%d so far)",
                    self.name, channel.handshakes)
        for event in channel.events:
            kind = event[:24]
            if now - self._logged.get(kind, -EVENT_LOG_INTERVAL) >= EVENT_LOG_INTERVAL:
                self._logged[kind] = now
                log.warning("%s: %s", self.name, event)
        channel.events.clear()


class PollableEncryptingEndpoint(EncryptingEndpoint):
    """The layer over a Pollable endpoint: readable when the endpoint below is."""

    def fileno(self) -> int:
        below = self.below
        assert isinstance(below, Pollable)  # as open_layer() checked
        return below.fileno()
