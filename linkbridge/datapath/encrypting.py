"""The encrypt layer between the tunnel and a link (`--private-key`, `--peer-public-key`).

Packets go down through `SecureChannel.seal()` (wire/secure.py) to the link below (the
fragmentation layer when there is one); frames come up through `SecureChannel.open()`, so
nothing above this layer sees a byte that did not authenticate. Handshake answers, retries
and the frames queued while a session was set up are sent from whichever thread finds them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from linkbridge.datapath.counters import Counters
from linkbridge.datapath.endpoint import BatchSender, Endpoint
from linkbridge.wire.secure import SecureChannel, StaticKeys, Timers

log = logging.getLogger("linkbridge")

EVENT_LOG_INTERVAL = 30.0  # seconds between two log lines of the same kind of event


@dataclass(frozen=True)
class Encryption:
    """The encrypt layer a tunnel asked for: its keys and timers (not yet running)."""

    keys: StaticKeys
    timers: Timers

    def open(self, link: Endpoint) -> EncryptingEndpoint:
        """The layer over `link` (open), with its first initiation sent."""
        endpoint = EncryptingEndpoint(link, self.keys, self.timers)
        endpoint.start()
        return endpoint


class EncryptCounters(Counters):
    """Packet counters of the layer; `as_dict` adds the session state and the frames below."""

    def __init__(self, link: Endpoint, status: Callable[[], dict[str, object]]) -> None:
        super().__init__()
        self._link = link
        self._status = status

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(), "encryption": self._status(),
                "frames": self._link.counters.as_dict()}


class EncryptingEndpoint:
    """Wraps an open link (or fragmentation layer): packets out are sealed, frames in are
    authenticated and opened. Drops (`auth`, `replay`, `handshake_*`...) count here.

    receive() also runs the channel's timers, so the bridge gives it a thread of its own that
    waits in receive() (it is not Pollable); an initiation goes out as soon as it opens.
    """

    def __init__(self, link: Endpoint, keys: StaticKeys, timers: Timers,
                 clock: Callable[[], float] = time.monotonic,
                 random: Callable[[int], bytes] = os.urandom,
                 wall_clock: Callable[[], int] = time.time_ns) -> None:
        self.link = link
        self.name = f"encrypt+{link.name}"
        self._clock = clock
        self._lock = threading.Lock()  # the channel's state and the link's send side
        self.counters: Counters = EncryptCounters(link, self._status)
        self.channel = SecureChannel(keys, timers, self.counters.drop, random, wall_clock)
        self._send_many: Callable[[list[bytes]], None] | None = (
            link.send_many if isinstance(link, BatchSender) else None)
        self._logged: dict[str, float] = {}
        self._handshakes = 0

    def start(self) -> None:
        """Send the first initiation (a restarted side renews the session by itself)."""
        with self._lock:
            self._put(self.channel.start(self._clock()))

    def send(self, packet: bytes) -> None:
        with self._lock:
            self._put(self.channel.seal(packet, self._clock()))
        self.counters.sent(len(packet))

    def send_many(self, packets: Sequence[bytes]) -> None:
        """Seal a batch and hand it down in one call (runs of equal size stay equal: UDP GSO)."""
        with self._lock:
            self._put(self.channel.seal_many(packets, self._clock()))
        counters = self.counters
        counters.tx_packets += len(packets)
        counters.tx_bytes += sum(map(len, packets))

    def receive(self, timeout: float) -> list[bytes]:
        deadline = self.channel.next_deadline()
        if deadline is not None:
            timeout = max(0.0, min(timeout, deadline - self._clock()))
        frames = self.link.receive(timeout)
        with self._lock:
            now = self._clock()
            packets, out = self.channel.open_many(frames, now)
            out += self.channel.tick(now)
            self._put(out)
            self._report(now)
        counters = self.counters
        counters.rx_packets += len(packets)
        counters.rx_bytes += sum(map(len, packets))
        return packets

    def close(self) -> None:
        self.link.close()

    def _put(self, frames: list[bytes]) -> None:
        """Send frames down (the lock is held)."""
        if self._send_many is not None and len(frames) > 1:
            self._send_many(frames)
        else:
            for frame in frames:
                self.link.send(frame)

    def _status(self) -> dict[str, object]:
        with self._lock:
            return self.channel.status(self._clock())

    def _report(self, now: float) -> None:
        """Log the channel's events, each kind at most once per EVENT_LOG_INTERVAL."""
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
