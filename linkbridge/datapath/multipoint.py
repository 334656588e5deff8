"""The link side of a multipoint tunnel: packets routed to their peer's station by the peer
table (wire/peers.py), frames from a station passed up only when their source is that peer's.

`PeerRouter` stands where one peer's upper stack would meet the lower half: today the peers
run no layers of their own (no per-peer encryption or compression yet, docs/multipoint.md), so
it is the demultiplexer and the peers' only state is their counters. A link that is no
AddressedLink carries one peer (`OneStation`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from linkbridge.datapath.counters import Counters
from linkbridge.datapath.endpoint import AddressedLink, Endpoint, Pollable
from linkbridge.wire.drops import FILTERED, NO_PEER, SOURCE_NOT_ALLOWED
from linkbridge.wire.peers import Peer, PeerTable

ONE_STATION = ""  # the station of the one peer of a link without station addresses


class AddressedEndpoint(Endpoint, AddressedLink, Protocol):
    """An opened link with stations."""


class PollableAddressed(AddressedEndpoint, Pollable, Protocol):
    """An opened link with stations that takes part in the shared poll."""


class OneStation:
    """A link without station addresses seen as an AddressedLink with one station."""

    def __init__(self, link: Endpoint) -> None:
        self.link = link
        self.name = link.name

    @property
    def counters(self) -> Counters:
        return self.link.counters

    def set_stations(self, stations: Sequence[str]) -> None:
        """Nothing to set: the one station is the link's peer."""

    def send_to(self, station: str, frame: bytes) -> None:
        self.link.send(frame)

    def send_all(self, frame: bytes) -> None:
        self.link.send(frame)

    def send(self, frame: bytes) -> None:
        self.link.send(frame)

    def receive(self, timeout: float) -> list[bytes]:
        return self.link.receive(timeout)

    def receive_from(self, timeout: float) -> list[tuple[str, bytes]]:
        return [(ONE_STATION, frame) for frame in self.link.receive(timeout)]

    def close(self) -> None:
        self.link.close()


class PeerCounters(Counters):
    """The router's counters (packets routed and taken in, drops of both), with each peer's
    and the link's (`frames`) in `as_dict`."""

    def __init__(self, peers: Mapping[str, Counters], below: Endpoint) -> None:
        super().__init__()
        self.peers = peers
        self._below = below

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(),
                "peers": {name: counters.as_dict() for name, counters in self.peers.items()},
                "frames": self._below.counters.as_dict()}


class PeerRouter:
    """Sends each packet to its peer's station (every station for broadcast and multicast);
    counts `no_peer` for a destination no peer owns and, per peer, `source_not_allowed` for a
    frame whose source the sending peer does not own. Lookups go through the table's dicts,
    never over the peers."""

    def __init__(self, link: AddressedEndpoint, table: PeerTable) -> None:
        self.name = link.name
        self.link = link
        self.table = table
        self._peer_counters = {peer.name: Counters() for peer in table.peers}
        self._counters = PeerCounters(self._peer_counters, link)
        self._stations: dict[str, tuple[Peer, Counters]] = {
            station: (peer, self._peer_counters[peer.name])
            for peer in table.peers for station in peer.stations or (ONE_STATION,)}

    @property
    def counters(self) -> PeerCounters:
        return self._counters

    def send(self, packet: bytes) -> None:
        peers = self.table.destinations(packet)
        if not peers:
            self._counters.drop(NO_PEER)
            return
        self._counters.sent(len(packet))
        for peer in peers:
            self._peer_counters[peer.name].sent(len(packet))
        if len(peers) == 1:
            stations = peers[0].stations
            self.link.send_to(stations[0] if stations else ONE_STATION, packet)
        else:
            self.link.send_all(packet)

    def receive(self, timeout: float) -> list[bytes]:
        packets = []
        for station, frame in self.link.receive_from(timeout):
            found = self._stations.get(station)
            if found is None:  # a link returns only the stations it was given
                self._counters.drop(FILTERED)
                continue
            peer, counters = found
            if not self.table.sent_by(peer, frame):
                counters.drop(SOURCE_NOT_ALLOWED)
                self._counters.drop(SOURCE_NOT_ALLOWED)
                continue
            counters.received(len(frame))
            self._counters.received(len(frame))
            packets.append(frame)
        return packets

    def close(self) -> None:
        self.link.close()


class PollablePeerRouter(PeerRouter):
    """A PeerRouter over a Pollable link: it joins the data path's shared poll (a receive(0)
    after the link's descriptor was readable may return nothing, every frame dropped)."""

    def __init__(self, link: PollableAddressed, table: PeerTable) -> None:
        super().__init__(link, table)
        self._fileno = link.fileno

    def fileno(self) -> int:
        return self._fileno()


def peer_router(link: Endpoint, table: PeerTable) -> PeerRouter:
    """The router over `link`: Pollable when the link is, over OneStation when the link has
    no station addresses (validate() let it carry one peer)."""
    if not isinstance(link, AddressedLink):
        return PeerRouter(OneStation(link), table)
    if isinstance(link, Pollable):
        return PollablePeerRouter(link, table)
    return PeerRouter(link, table)
