"""TCP MSS clamping over several links (`--clamp-mss`, docs/multilink.md): the side above
(the TUN device), with every TCP SYN that crosses it, either way, lowered to the smallest
link's size (wire/mss.py), so that a connection's full segments go whole over any of the
links. Not Pollable, as KeepaliveSource: its direction runs in a thread of its own that waits
in receive(), so the tunnel leaves the lean loop."""

from __future__ import annotations

from linkbridge.datapath.counters import Counters
from linkbridge.datapath.endpoint import Endpoint
from linkbridge.wire.mss import clamp_mss


class MssClamp:
    """The endpoint `below`, its SYNs' MSS lowered (both ways) so that a full segment is a
    packet of at most `largest` bytes."""

    def __init__(self, below: Endpoint, largest: int) -> None:
        self.below = below
        self.largest = largest
        self.name = below.name
        self.counters: Counters = below.counters  # below's own: clamping drops nothing

    def send(self, packet: bytes) -> None:
        self.below.send(clamp_mss(packet, self.largest))

    def receive(self, timeout: float) -> list[bytes]:
        return [clamp_mss(packet, self.largest) for packet in self.below.receive(timeout)]

    def close(self) -> None:
        self.below.close()
