"""The fragmentation layer between the tunnel and a link (`--fragment always|auto|never`)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from linkbridge.datapath.counters import Counters
from linkbridge.datapath.endpoint import Endpoint, Vouching
from linkbridge.wire.fragment import DEFAULT_TIMEOUT, ID_SPACE, Fragmenter, Reassembler


class FragmentCounters(Counters):
    """Packet counters of the layer; `as_dict` adds the frame counters of the endpoint below."""

    def __init__(self, below: Endpoint) -> None:
        super().__init__()
        self._below = below

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(), "frames": self._below.counters.as_dict()}


class FragmentingEndpoint:
    """Wraps an open link: packets over `frame_size` go out as fragments, frames come back in
    as packets. `frame_size` 0 means the link takes any size (reassemble only).

    Counters count packets; fragment and reassembly drops are counted here by reason.
    Overdue partial packets expire whenever receive() returns, so nothing polls on its own.
    """

    def __init__(self, below: Endpoint, frame_size: int, timeout: float = DEFAULT_TIMEOUT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.below = below
        self.name = f"fragment+{below.name}"
        self.counters: Counters = FragmentCounters(below)
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
            self.below.send(frame)
        self.counters.sent(len(packet))

    def vouch_with(self, check: Callable[[bytes], bool]) -> None:
        """Pass the encrypt layer's check on to a multipoint peer's port (Vouching): a frame
        that fits passes this layer as it is, so the check holds for it; a fragment never
        vouches (a peer roams on its next whole frame)."""
        if isinstance(self.below, Vouching):
            self.below.vouch_with(check)

    def receive(self, timeout: float) -> list[bytes]:
        frames = self.below.receive(timeout)
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
        self.below.close()
