"""The link side of a multipoint tunnel: packets routed to their peer's station by the peer
table (wire/peers.py), frames from a station passed up only when their source is that peer's.

`PeerRouter` is the demultiplexer between the peers' upper stacks and the shared lower half
(docs/architecture.md): each peer has a `PeerPort` on the link and its own stack over it (its
own compression contexts, its own encryption session: docs/multipoint.md). A link that is no
AddressedLink carries one peer (`OneStation`). `peer_router()` picks the router for a link.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from linkbridge.datapath.counters import Counters
from linkbridge.datapath.endpoint import STRANGER, AddressedLink, Endpoint, Pollable, RoamingLink
from linkbridge.datapath.roaming import Check, Roamer
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


class PeerPort:
    """One peer's end of the shared link, under the peer's own upper stack: send() goes to the
    peer's station, receive() returns what the router took from it. Its counters are the
    frames to and from the peer."""

    def __init__(self, link: AddressedLink, peer: Peer) -> None:
        self.name = peer.name
        self.counters = Counters()
        self._link = link
        self._station = peer.stations[0] if peer.stations else ONE_STATION
        self._inbox: list[bytes] = []
        self.vouch: Check | None = None  # the encrypt layer's check above (Vouching)

    def send(self, frame: bytes) -> None:
        self.counters.sent(len(frame))
        self._link.send_to(self._station, frame)

    def take(self, frame: bytes) -> None:
        """A frame from the peer's station, for the next receive()."""
        self.counters.received(len(frame))
        self._inbox.append(frame)

    def receive(self, timeout: float) -> list[bytes]:
        frames, self._inbox = self._inbox, []
        return frames

    def vouch_with(self, check: Check) -> None:
        """The encrypt layer's check of the peer's frames: the peer roams on it."""
        self.vouch = check

    def close(self) -> None:
        """The router closes the shared link."""


@dataclass(frozen=True)
class PeerStack:
    """A peer, its port on the link and the top of its upper stack (the port itself when the
    peers run no layers)."""

    peer: Peer
    port: PeerPort
    top: Endpoint


class PeerCounters(Counters):
    """The router's counters (packets routed and taken in, drops of both), with each peer's
    stack's and the link's (`frames`) in `as_dict`."""

    def __init__(self, stacks: Mapping[str, PeerStack], below: Endpoint) -> None:
        super().__init__()
        self.stacks = stacks
        self._below = below

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(),
                "peers": {name: stack.top.counters.as_dict()
                          for name, stack in self.stacks.items()},
                "frames": self._below.counters.as_dict()}


def no_layers(port: PeerPort) -> Endpoint:
    """A peer's upper stack when the peers run none: its port."""
    return port


class PeerRouter:
    """Sends each packet down its peer's upper stack to the peer's station (without layers,
    broadcast and multicast go to every station at once); counts `no_peer` for a destination
    no peer owns. Frames go up the stack of the station's peer, and a packet whose source the
    peer does not own is counted `source_not_allowed`, on the router and on the peer. Lookups
    go through the table's dicts, never over the peers. `upper(port)` opens a peer's stack."""

    def __init__(self, link: AddressedEndpoint, table: PeerTable,
                 upper: Callable[[PeerPort], Endpoint] = no_layers) -> None:
        self.name = link.name
        self.link = link
        self.table = table
        self._stacks: dict[str, PeerStack] = {}
        for peer in table.peers:
            port = PeerPort(link, peer)
            self._stacks[peer.name] = PeerStack(peer, port, upper(port))
        self._plain = upper is no_layers
        self._counters = PeerCounters(self._stacks, link)
        self._stations = {station: self._stacks[peer.name]
                          for peer in table.peers for station in peer.stations or (ONE_STATION,)}
        self._roamer = roamer(link, self._stations, self._counters.drop)

    @property
    def counters(self) -> PeerCounters:
        return self._counters

    def send(self, packet: bytes) -> None:
        peers = self.table.destinations(packet)
        if not peers:
            self._counters.drop(NO_PEER)
            return
        self._counters.sent(len(packet))
        if len(peers) > 1 and self._plain:
            for peer in peers:
                self._stacks[peer.name].port.counters.sent(len(packet))
            self.link.send_all(packet)
            return
        for peer in peers:
            self._stacks[peer.name].top.send(packet)

    def receive(self, timeout: float) -> list[bytes]:
        touched: dict[str, PeerStack] = {}
        received = self.link.receive_from(timeout)
        for station, frame in received:
            stack = self._stations.get(station) or self._roamed(station, frame, received)
            if stack is None:
                continue
            stack.port.take(frame)
            touched[stack.peer.name] = stack
        packets = []
        for stack in touched.values():
            for packet in stack.top.receive(0):
                if not self.table.sent_by(stack.peer, packet):
                    stack.top.counters.drop(SOURCE_NOT_ALLOWED)
                    self._counters.drop(SOURCE_NOT_ALLOWED)
                    continue
                self._counters.received(len(packet))
                packets.append(packet)
        return packets

    def _roamed(self, source: str, frame: bytes,
                batch: Sequence[tuple[str, bytes]]) -> PeerStack | None:
        """The stack of the peer whose station moved to `source` for `frame` (a roaming
        link's stranger, docs/multipoint.md); None, counted, for any other frame (a link
        returns only the stations it was given, and strangers only when it roams)."""
        if self._roamer is None or not source.startswith(STRANGER):
            self._counters.drop(FILTERED)
            return None
        station = self._roamer.station_of(source, frame, batch)
        return None if station is None else self._stations[station]

    def close(self) -> None:
        self.link.close()


def roamer(link: AddressedLink, stations: Mapping[str, PeerStack],
           drop: Callable[[str], None]) -> Roamer | None:
    """The roamer of a link whose stations may move, when peers' encrypt layers vouch for
    their frames (without encryption nothing roams: an address is no proof)."""
    checks = {station: stack.port.vouch for station, stack in stations.items()
              if stack.port.vouch is not None}
    return Roamer(link, checks, drop) if checks and isinstance(link, RoamingLink) else None


class PollablePeerRouter(PeerRouter):
    """A PeerRouter over a Pollable link: it joins the data path's shared poll (a receive(0)
    after the link's descriptor was readable may return nothing, every frame dropped)."""

    def __init__(self, link: PollableAddressed, table: PeerTable,
                 upper: Callable[[PeerPort], Endpoint] = no_layers) -> None:
        super().__init__(link, table, upper)
        self._fileno = link.fileno

    def fileno(self) -> int:
        return self._fileno()


def peer_router(link: Endpoint, table: PeerTable,
                upper: Callable[[PeerPort], Endpoint] = no_layers) -> PeerRouter:
    """The router over `link`, each peer's stack opened by `upper`: Pollable when the link
    is, over OneStation when the link has no station addresses (validate() let it carry one
    peer)."""
    if not isinstance(link, AddressedLink):
        return PeerRouter(OneStation(link), table, upper)
    if isinstance(link, Pollable):
        return PollablePeerRouter(link, table, upper)
    return PeerRouter(link, table, upper)
