"""The link side of a multipoint tunnel: packets routed to their peer's station by the peer
table (wire/peers.py), frames from a station passed up only when their source is that peer's.

`PeerRouter` is the demultiplexer between the peers' upper stacks and the shared lower half
(docs/architecture.md): each peer has a `PeerPort` on the link and its own stack over it (its
own compression contexts, its own encryption session: docs/multipoint.md). A link that is no
AddressedLink carries one peer (`OneStation`). `peer_router()` picks the router for a link.

The router also keeps each peer's keepalives (a KEEPALIVE_FRAME from the tunnel side goes to
the peers that were sent nothing since the last one), tells the tunnel how many frames came
from each peer (its liveness, tunnel/peerwatch.py), and takes a new peer table while it runs
(`update()`, a reload): an unchanged peer keeps its stack, a new one gets one, a removed one's
is closed.

Each peer's port is a LossReporter: a frame the link lost on the way in (a KISS framing
error) reaches every peer's stack, whose VJ decompressor tosses; over a link whose stations
are return paths (udp:) it is a ReturnPath too, so each peer's encrypt layer answers a
handshake flood with cookie replies to its station's address.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from linkbridge.datapath.counters import Counters
from linkbridge.datapath.endpoint import (
    STRANGER,
    AddressedLink,
    Endpoint,
    LossReporter,
    Pollable,
    RoamingLink,
    StationReturnPaths,
)
from linkbridge.datapath.handshakes import HandshakeScheduler
from linkbridge.datapath.roaming import Check, Roamer
from linkbridge.wire.drops import FILTERED, NO_PEER, SOURCE_NOT_ALLOWED
from linkbridge.wire.frames import KEEPALIVE_FRAME
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

    def on_loss(self, listener: Callable[[str], None]) -> None:
        """Pass on the link's loss reports (LossReporter), when it makes any."""
        if isinstance(self.link, LossReporter):
            self.link.on_loss(listener)

    def close(self) -> None:
        self.link.close()


class PeerPort:
    """One peer's end of the shared link, under the peer's own upper stack: send() goes to the
    peer's station, receive() returns what the router took from it. Its counters are the
    frames to and from the peer. A LossReporter: the router tells it of each frame the link
    lost (lost())."""

    def __init__(self, link: AddressedLink, peer: Peer) -> None:
        self.name = peer.name
        self.counters = Counters()
        self._link = link
        self._station = peer.stations[0] if peer.stations else ONE_STATION
        self._inbox: list[bytes] = []
        self.vouch: Check | None = None  # the encrypt layer's check above (Vouching)
        self._loss_listeners: tuple[Callable[[str], None], ...] = ()

    def send(self, frame: bytes) -> None:
        self.counters.sent(len(frame))
        self._link.send_to(self._station, frame)

    def take(self, frame: bytes, station: str = ONE_STATION) -> None:
        """A frame from the peer's station (`station`, when it has several: the one it came
        from), for the next receive()."""
        self.counters.received(len(frame))
        self._inbox.append(frame)

    def receive(self, timeout: float) -> list[bytes]:
        frames, self._inbox = self._inbox, []
        return frames

    def vouch_with(self, check: Check) -> None:
        """The encrypt layer's check of the peer's frames: the peer roams on it."""
        self.vouch = check

    def on_loss(self, listener: Callable[[str], None]) -> None:
        """Call `listener(reason)` for each frame the link lost on the way in (LossReporter:
        on the receiving thread, before the frames that came with the loss go up)."""
        self._loss_listeners = (*self._loss_listeners, listener)

    def lost(self, reason: str) -> None:
        """A frame the peer may have sent was lost on the way in."""
        for listener in self._loss_listeners:
            listener(reason)

    def close(self) -> None:
        """The router closes the shared link."""


class ReturnPathPort(PeerPort):
    """A peer's port on a link whose stations are return paths (udp:): a ReturnPath, whose
    address is the peer's station's now (it moves when the station roams), so that the
    peer's encrypt layer answers an initiation over its rate with a cookie reply there."""

    def __init__(self, link: AddressedLink, peer: Peer) -> None:
        super().__init__(link, peer)
        assert isinstance(link, StationReturnPaths)  # as the router chose this port for
        self._paths = link

    def return_address(self) -> str:
        return self._paths.station_address(self._station)


@dataclass(frozen=True)
class PeerStack:
    """A peer, its port on the link, the top of its upper stack (the port itself when the
    peers run no layers) and the undo of what that stack opened (an encryption session)."""

    peer: Peer
    port: PeerPort
    top: Endpoint
    undo: contextlib.ExitStack


@dataclass(frozen=True)
class PeerView:
    """What the data path looks up, swapped whole by update(): the table, each peer's stack by
    name and by station."""

    table: PeerTable
    stacks: Mapping[str, PeerStack]
    stations: Mapping[str, PeerStack]


UpperOpener = Callable[[PeerPort, contextlib.ExitStack], Endpoint]
TopWrapper = Callable[[Endpoint, contextlib.ExitStack], Endpoint]  # a layer over a stack's top


def same_top(top: Endpoint, _undo: contextlib.ExitStack) -> Endpoint:
    """The TopWrapper that adds nothing."""
    return top


class PeerCounters(Counters):
    """The router's counters (packets routed and taken in, drops of both), with each peer's
    stack's and the link's (`frames`) in `as_dict`."""

    def __init__(self, router: PeerRouter, below: Endpoint) -> None:
        super().__init__()
        self._router = router
        self._below = below

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(),
                "peers": {name: stack.top.counters.as_dict()
                          for name, stack in self._router.view.stacks.items()},
                "frames": self._below.counters.as_dict()}


def no_layers(port: PeerPort, undo: contextlib.ExitStack) -> Endpoint:
    """A peer's upper stack when the peers run none: its port."""
    return port


class PeerRouter:
    """Sends each packet down its peer's upper stack to the peer's station (without layers,
    broadcast and multicast go to every station at once); counts `no_peer` for a destination
    no peer owns. Frames go up the stack of the station's peer, and a packet whose source the
    peer does not own is counted `source_not_allowed`, on the router and on the peer. Lookups
    go through the table's dicts, never over the peers. `upper(port, undo)` opens a peer's
    stack, putting what closes it on `undo`; `port_type` makes each peer's port."""

    port_type: type[PeerPort] = PeerPort

    def __init__(self, link: AddressedEndpoint, table: PeerTable,
                 upper: UpperOpener = no_layers,
                 handshakes: HandshakeScheduler | None = None) -> None:
        self.name = link.name
        self.link = link
        self.handshakes = handshakes  # the one the peers' encrypt layers share (reloads too)
        self._upper = upper
        self._plain = upper is no_layers
        self.view = PeerView(table, {}, {})
        self._counters = PeerCounters(self, link)
        self._sent_at_tick: dict[str, int] = {}  # each peer's frames sent at the last keepalive
        # during update(): new peers' ports by station (their stacks may get an answer before
        # the swap), then the new stacks whose ports may hold such frames
        self._pending: dict[str, PeerPort] = {}
        self._flush: list[PeerStack] = []
        self.keepalives: dict[str, int] = {}  # keepalives sent to each peer
        self._roamer: Roamer | None = None  # with encryption over a RoamingLink (_install)
        # what the pipeline put over each peer's stack (its link-aware queue), for a reload's
        # new peers to get the same
        self.top: TopWrapper = same_top
        if isinstance(link, StationReturnPaths):  # udp:: each peer's port proves its path
            self.port_type = ReturnPathPort
        if isinstance(link, LossReporter):
            link.on_loss(self._frame_lost)
        self._install(table, upper, restation=False)  # validate() gave the link its stations

    @property
    def table(self) -> PeerTable:
        return self.view.table

    @property
    def counters(self) -> PeerCounters:
        return self._counters

    def send(self, packet: bytes) -> None:
        view = self.view
        peers = view.table.destinations(packet)
        if not peers:
            self._counters.drop(NO_PEER)
            return
        if len(peers) > 1 and packet == KEEPALIVE_FRAME:
            self._keepalive(view)
            return
        self._counters.sent(len(packet))
        if len(peers) > 1 and self._plain:
            for peer in peers:
                view.stacks[peer.name].port.counters.sent(len(packet))
            self.link.send_all(packet)
            return
        for peer in peers:
            view.stacks[peer.name].top.send(packet)

    def _keepalive(self, view: PeerView) -> None:
        """A keepalive tick: the frame goes down the stack of each peer that was sent no frame
        since the last tick (a tick comes every half keepalive interval)."""
        for name, stack in view.stacks.items():
            counters = stack.port.counters
            if counters.tx_packets == self._sent_at_tick.get(name, 0):
                stack.top.send(KEEPALIVE_FRAME)
                self.keepalives[name] = self.keepalives.get(name, 0) + 1
            self._sent_at_tick[name] = counters.tx_packets

    def receive(self, timeout: float) -> list[bytes]:
        view = self.view
        if self._plain:
            return self._receive_plain(view, timeout)
        touched: dict[str, PeerStack] = {}
        received = self.link.receive_from(timeout)
        for station, frame in received:
            stack = view.stations.get(station)
            if stack is None:  # a link returns only the stations it was given ...
                port = self._pending.get(station)  # ... or a peer an update() is adding
                if port is not None:
                    port.take(frame, station)
                    continue
                # ... or, when it roams, a stranger
                stack = self._roamed(view, station, frame, received)
                if stack is None:
                    continue
            stack.port.take(frame, station)
            touched[stack.peer.name] = stack
        if self._flush:  # frames new peers' ports took during an update()
            flush, self._flush = self._flush, []
            touched.update((stack.peer.name, stack) for stack in flush)
        packets = []
        for stack in touched.values():
            for packet in stack.top.receive(0):
                if not view.table.sent_by(stack.peer, packet):
                    stack.top.counters.drop(SOURCE_NOT_ALLOWED)
                    self._counters.drop(SOURCE_NOT_ALLOWED)
                    continue
                self._counters.received(len(packet))
                packets.append(packet)
        return packets

    def _frame_lost(self, reason: str) -> None:
        """The link lost a frame on the way in (inside receive_from()): every peer's port
        hears of it, since no link can say whose it was (the sender's address went with the
        frame's bytes: a KISS framing error); a needless VJ toss costs a peer little."""
        for stack in self.view.stacks.values():
            stack.port.lost(reason)

    def wake(self, stacks: Sequence[PeerStack]) -> None:
        """Have the next receive() pass up what the layers of `stacks` hold, frames from their
        ports or not (a peer's link scheduler whose wait for a resequencing gap ended)."""
        self._flush = [*self._flush, *stacks]

    def _roamed(self, view: PeerView, source: str, frame: bytes,
                batch: Sequence[tuple[str, bytes]]) -> PeerStack | None:
        """The stack of the peer whose station moved to `source` for `frame` (a roaming
        link's stranger, docs/multipoint.md); None, counted, for any other frame (a link
        returns only the stations it was given, and strangers only when it roams)."""
        if self._roamer is None or not source.startswith(STRANGER):
            self._counters.drop(FILTERED)
            return None
        station = self._roamer.station_of(source, frame, batch)
        return None if station is None else view.stations[station]

    def _receive_plain(self, view: PeerView, timeout: float) -> list[bytes]:
        """receive() when the peers run no layers: each frame is its packet, checked as it
        comes (no stack to pass it through: the cost per frame is the same with 1 or 100
        peers in a batch)."""
        stations, sent_by, counters = view.stations, view.table.sent_by, self._counters
        packets = []
        for station, frame in self.link.receive_from(timeout):
            stack = stations.get(station)
            if stack is None:  # a link returns only the stations it was given
                counters.drop(FILTERED)
                continue
            stack.port.counters.received(len(frame))
            if not sent_by(stack.peer, frame):
                stack.port.counters.drop(SOURCE_NOT_ALLOWED)
                counters.drop(SOURCE_NOT_ALLOWED)
                continue
            counters.received(len(frame))
            packets.append(frame)
        return packets

    def peer_frames(self) -> list[tuple[Peer, int]]:
        """Each peer with the number of frames that came up its stack so far (with
        encryption, those that authenticated: garbage from its station does not count)."""
        return [(stack.peer, stack.top.counters.rx_packets)
                for stack in self.view.stacks.values()]

    def update(self, table: PeerTable, upper: UpperOpener | None = None
               ) -> tuple[list[Peer], list[Peer]]:
        """Serve the peers of `table` from now on, opening new peers' stacks with `upper`
        (a reload's, with the new peers' keys) when given; the peers (added, removed). A peer
        given exactly as before keeps its port and stack (sessions, contexts, counters); a new
        or changed one gets new ones; a removed one's stack is closed after the swap. The link
        has the old and the new stations during the swap, so neither view meets a station the
        link lacks."""
        return self._install(table, upper or self._upper, restation=True)

    def _install(self, table: PeerTable, opener: UpperOpener, restation: bool
                 ) -> tuple[list[Peer], list[Peer]]:
        """update(), and the first table (whose stations the link has: `restation` False)."""
        old = self.view.stacks
        stacks: dict[str, PeerStack] = {}
        added = []
        before = [station for stack in old.values() for station in stack.peer.stations]
        after = [station for peer in table.peers for station in peer.stations]
        if restation:
            self.link.set_stations(list(dict.fromkeys(before + after)))
        try:
            for peer in table.peers:
                kept = old.get(peer.name)
                if kept is not None and kept.peer == peer:
                    stacks[peer.name] = PeerStack(peer, kept.port, kept.top, kept.undo)
                    continue
                port, undo = self.port_type(self.link, peer), contextlib.ExitStack()
                self._pending = {**self._pending, **dict.fromkeys(peer.stations, port)}
                with undo:
                    stacks[peer.name] = PeerStack(peer, port, opener(port, undo),
                                                  undo.pop_all())
                added.append(peer)
        except BaseException:
            self._pending = {}
            for peer in added:
                stacks[peer.name].undo.close()
            if restation:
                self.link.set_stations(before)
            raise
        removed = [stack for name, stack in old.items()
                   if name not in stacks or stacks[name].port is not stack.port]
        self.view = PeerView(table, stacks, {
            station: stacks[peer.name]
            for peer in table.peers for station in peer.stations or (ONE_STATION,)})
        self._roamer = roamer(self.link, self.view.stations, self._counters.drop)
        self._flush = [stacks[peer.name] for peer in added]
        self._pending = {}
        if restation:
            self.link.set_stations(after)
        self._upper = opener
        for stack in removed:
            stack.undo.close()
            self.keepalives.pop(stack.peer.name, None)
            self._sent_at_tick.pop(stack.peer.name, None)
        return added, [stack.peer for stack in removed]

    def close_peers(self) -> None:
        """Close every peer's stack (their encryption sessions)."""
        for stack in self.view.stacks.values():
            stack.undo.close()

    def close(self) -> None:
        self.close_peers()
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
                 upper: UpperOpener = no_layers,
                 handshakes: HandshakeScheduler | None = None) -> None:
        super().__init__(link, table, upper, handshakes)
        self._fileno = link.fileno

    def fileno(self) -> int:
        return self._fileno()


def peer_router(link: Endpoint, table: PeerTable, upper: UpperOpener = no_layers,
                handshakes: HandshakeScheduler | None = None) -> PeerRouter:
    """The router over `link`, each peer's stack opened by `upper`: Pollable when the link
    is, over OneStation when the link has no station addresses (validate() let it carry one
    peer)."""
    if not isinstance(link, AddressedLink):
        return PeerRouter(OneStation(link), table, upper, handshakes)
    if isinstance(link, Pollable):
        return PollablePeerRouter(link, table, upper, handshakes)
    return PeerRouter(link, table, upper, handshakes)
