"""TCP MSS clamping over several links (`--clamp-mss`, docs/multilink.md): the side above
(the TUN device), with every TCP SYN that crosses it, either way, lowered to the smallest
size of the links that are up (wire/mss.py, `smallest_up()`), so that a connection's full
segments go whole over any of them. Not Pollable, as KeepaliveSource: its direction runs in a
thread of its own that waits in receive(), so the tunnel leaves the lean loop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from linkbridge.datapath.counters import Counters
from linkbridge.datapath.endpoint import Endpoint
from linkbridge.wire.mss import clamp_mss

ANY_SIZE = 0xFFFF  # the largest packet when no link that is up has a size: no clamping


class UsableLinks(Protocol):
    def usable_links(self) -> Sequence[int]:
        """The indices of the links frames may go on now (not down)."""
        ...


def smallest_up(packets: Sequence[int | None], links: UsableLinks) -> Callable[[], int]:
    """The largest packet that goes whole over every link that is up now, of `packets` (each
    link's, None: any size), asked of `links` at each SYN."""
    def largest() -> int:
        return min((size for index in links.usable_links()
                    if (size := packets[index]) is not None), default=ANY_SIZE)
    return largest


class MssClamp:
    """The endpoint `below`, its SYNs' MSS lowered (both ways) so that a full segment is a
    packet of at most `largest` bytes (or what `largest()` says at each SYN)."""

    def __init__(self, below: Endpoint, largest: int | Callable[[], int]) -> None:
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
