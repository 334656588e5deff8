"""Keepalives (`--keepalive SECONDS`): the tunnel side hands the data path a keepalive frame
whenever nothing went towards the link for that long.

The frame enters the stack where packets do (above fragmentation and encryption), so it is
fragmented, encrypted and paced exactly like a packet, and the link's airtime limits (a duty
cycle) count it. The receiving data path counts it as `keepalive` and never writes it to the
device (wire.packet.packet_problem). The wrapper is not Pollable: its direction runs in a
thread of its own that waits in receive(), so the tunnel leaves the lean loop.

A multipoint tunnel's keepalives are per peer: with `steady`, the frame comes every half
interval whatever the traffic, and the peer router (datapath/multipoint.py) sends it to each
peer that was sent nothing since the last one, so every peer hears something at least once an
interval however busy the others are.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from linkbridge.datapath.counters import Counters
from linkbridge.datapath.endpoint import Endpoint
from linkbridge.wire.frames import KEEPALIVE_FRAME
from linkbridge.wire.liveness import keepalive_due


class KeepaliveSource:
    """The tunnel side `below`, plus a keepalive after every `interval` seconds of silence (with
    `steady`: every `interval` / 2 seconds, after the packets read then)."""

    def __init__(self, below: Endpoint, interval: float,
                 clock: Callable[[], float] = time.monotonic, steady: bool = False) -> None:
        self.below = below
        self.steady = steady
        self.interval = interval / 2 if steady else interval
        self.name = below.name
        self.counters: Counters = below.counters  # the device side's: keepalives are not its
        self.sent = 0  # keepalives handed to the link side
        self._clock = clock
        self._last = clock()

    def receive(self, timeout: float) -> list[bytes]:
        wait = max(0.0, min(timeout, self._last + self.interval - self._clock()))
        packets = self.below.receive(wait)
        now = self._clock()
        if packets and not self.steady:
            self._last = now
        elif keepalive_due(self._last, self.interval, now):
            self._last = now
            self.sent += 1
            return [*packets, KEEPALIVE_FRAME]
        return packets

    def send(self, packet: bytes) -> None:
        self.below.send(packet)

    def close(self) -> None:
        self.below.close()
