"""The fragmentation layer between the tunnel and a link (`--fragment always|auto|never`)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from linkbridge.datapath.counters import Counters
from linkbridge.datapath.endpoint import Endpoint
from linkbridge.wire.fragment import (
    DEFAULT_TIMEOUT,
    ID_SPACE,
    Fragmenter,
    Reassembler,
    check_frame_size,
)

MODES = ("auto", "always", "never")


def fragment_frame_size(mode: str, tunnel_mtu: int, link_mtu: int | None) -> int | None:
    """Whether the layer is needed: None for no layer, else the frame size to split to.

    `auto` adds it when the tunnel MTU exceeds the link's; `always` adds it in any case (with
    no link MTU it then only reassembles what the peer fragments); `never` leaves it out.
    Raises ConfigError when the tunnel MTU cannot be carried in the link's frames.
    """
    if mode == "never" or (mode == "auto" and (link_mtu is None or tunnel_mtu <= link_mtu)):
        return None
    size = link_mtu or 0
    if link_mtu is not None:
        check_frame_size(link_mtu, tunnel_mtu)
    return size


class FragmentCounters(Counters):
    """Packet counters of the layer; `as_dict` adds the frame counters of the link below."""

    def __init__(self, link: Endpoint) -> None:
        super().__init__()
        self._link = link

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(), "frames": self._link.counters.as_dict()}


class FragmentingEndpoint:
    """Wraps an open link: packets over `frame_size` go out as fragments, frames come back in
    as packets. `frame_size` 0 means the link takes any size (reassemble only).

    Counters count packets; fragment and reassembly drops are counted here by reason.
    Overdue partial packets expire whenever receive() returns, so nothing polls on its own.
    """

    def __init__(self, link: Endpoint, frame_size: int, timeout: float = DEFAULT_TIMEOUT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.link = link
        self.name = f"fragment+{link.name}"
        self.counters: Counters = FragmentCounters(link)
        self._fragmenter = (
            Fragmenter(frame_size, self.counters.drop,
                       first_id=int.from_bytes(os.urandom(4), "big") % ID_SPACE)
            if frame_size else None
        )
        self._reassembler = Reassembler(self.counters.drop, timeout)
        self._clock = clock

    def send(self, packet: bytes) -> None:
        frames = [packet] if self._fragmenter is None else self._fragmenter.split(packet)
        if not frames:
            return
        for frame in frames:
            self.link.send(frame)
        self.counters.sent(len(packet))

    def receive(self, timeout: float) -> list[bytes]:
        frames = self.link.receive(timeout)
        now = self._clock()
        packets = []
        for frame in frames:
            packet = self._reassembler.feed(frame, now)
            if packet is not None:
                self.counters.received(len(packet))
                packets.append(packet)
        self._reassembler.expire(now)
        return packets

    def close(self) -> None:
        self.link.close()
