"""Several links per peer of a multipoint tunnel (docs/multipoint.md, "Several links per peer").

Each link of the tunnel is shared by the peers, and a peer names its station on each link it
uses (`endpoint=LINK:STATION`). `SharedLinks` joins the links into one AddressedLink whose
stations are those `LINK:STATION` names, so the PeerRouter over it finds a frame's peer by
(link, station) in one dict as with one link; it reads each link in a thread and probes every
link's stations every probe interval. Each peer's port on it (`LinksPort`) has a port of its
own per station (`StationPort`), the lowers of the peer's own LinkScheduler (per-peer liveness
of each link, the tunnel's policy, de-duplication and resequencing) under the peer's upper
stack, so a peer's compression and encryption run once across its links, as with one peer.
`PeerLinks` shows each peer's links to the tunnel (status, log).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Protocol

from linkbridge.datapath.counters import Counters
from linkbridge.datapath.endpoint import AddressedLink, Endpoint
from linkbridge.datapath.multilink import LinkScheduler, read_link
from linkbridge.datapath.multipoint import ONE_STATION, AddressedEndpoint, PeerPort, PeerRouter
from linkbridge.wire.liveness import Change
from linkbridge.wire.multilink import PROBE_FRAME
from linkbridge.wire.peers import Peer, link_station


class LinkWatch(Protocol):
    """What the tunnel reads of its several links (status, log, per-link hooks): a
    LinkScheduler's, or PeerLinks' for a multipoint tunnel."""

    @property
    def lowers(self) -> Sequence[Endpoint]: ...

    @property
    def switches(self) -> int: ...

    def link_changes(self) -> list[tuple[str, Change]]: ...

    def link_status(self) -> list[dict[str, Any]]: ...

    def reordering(self) -> dict[str, int]: ...

    def usable_links(self) -> Sequence[int]: ...


class SharedLinks:
    """The addressed links `links` (in --link order) as one AddressedLink with stations
    `LINK:STATION` (LINK from 1). A probe goes to every station of every link each
    `probe_interval`, from the receiving thread (each peer's scheduler counts it for its link)."""

    def __init__(self, links: Sequence[AddressedEndpoint], probe_interval: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.links = tuple(links)
        self.name = "links(" + ",".join(link.name for link in self.links) + ")"
        self.counters = Counters()
        self.probe_interval = probe_interval
        self._clock = clock
        self._next_probe = clock()
        self.probes_sent = 0  # probe rounds (a probe to every station of every link)
        self._where: dict[str, tuple[int, str]] = {}  # LINK:STATION -> (link index, station)
        self._inbox: queue.Queue[tuple[int, list[tuple[str, bytes]]] | BaseException] = \
            queue.Queue()
        self._closing = threading.Event()
        self._readers = [threading.Thread(target=read_link, daemon=True, name=f"link-{index}",
                                          args=(index, link.receive_from, self._inbox,
                                                self._closing))
                         for index, link in enumerate(self.links)]
        for reader in self._readers:
            reader.start()

    def set_stations(self, stations: Sequence[str]) -> None:
        """Each link gets the stations named on it."""
        where = {station: link_station(station, len(self.links), "station")
                 for station in stations}
        for index, link in enumerate(self.links):
            link.set_stations([name for at, name in where.values() if at == index])
        self._where = where

    def send_to(self, station: str, frame: bytes) -> None:
        index, name = self._where[station]
        self.counters.sent(len(frame))
        self.links[index].send_to(name, frame)

    def send_all(self, frame: bytes) -> None:
        self.counters.sent(len(frame))
        for link in self.links:
            link.send_all(frame)

    def send(self, frame: bytes) -> None:
        self.send_all(frame)

    def receive(self, timeout: float) -> list[bytes]:
        return [frame for _station, frame in self.receive_from(timeout)]

    def receive_from(self, timeout: float) -> list[tuple[str, bytes]]:
        now = self._clock()
        if now >= self._next_probe:
            self._next_probe = now + self.probe_interval
            for link in self.links:
                link.send_all(PROBE_FRAME)
            self.probes_sent += 1
        wait = max(0.0, min(timeout, self._next_probe - now))
        try:
            item = self._inbox.get(timeout=wait) if wait else self._inbox.get_nowait()
        except queue.Empty:
            return []
        if isinstance(item, BaseException):
            raise item
        index, received = item
        for _station, frame in received:
            self.counters.received(len(frame))
        return [(f"{index + 1}:{station}", frame) for station, frame in received]

    def close(self) -> None:
        """Stop the readers (the links are closed by whoever opened them)."""
        self._closing.set()
        for reader in self._readers:
            reader.join()


def link_number(station: str) -> int:
    """The link number of a checked `LINK:STATION`."""
    return int(station.partition(":")[0])


class StationPort(PeerPort):
    """A peer's port on one of the shared links, named by its station there (`LINK:STATION`);
    what it sends and takes counts on the peer's port too (`whole`)."""

    def __init__(self, link: AddressedLink, peer: Peer, station: str, whole: Counters) -> None:
        super().__init__(link, replace(peer, name=station, stations=(station,)))
        self.station = station
        self.link_index = link_number(station) - 1
        self._whole = whole

    def send(self, frame: bytes) -> None:
        self._whole.sent(len(frame))
        super().send(frame)


class LinksPort(PeerPort):
    """A peer's port on SharedLinks: a StationPort per station it has (per link it uses, in
    --link order), the lowers of the peer's link scheduler (`scheduler`, set by who opens its
    stack); take() hands each frame to the port of the station it came from."""

    def __init__(self, link: AddressedLink, peer: Peer) -> None:
        super().__init__(link, peer)
        stations = sorted(peer.stations, key=link_number)
        self.ports = [StationPort(link, peer, station, self.counters) for station in stations]
        self._by_station = {port.station: port for port in self.ports}
        self.scheduler: LinkScheduler | None = None

    def take(self, frame: bytes, station: str = ONE_STATION) -> None:
        self.counters.received(len(frame))
        self._by_station[station].take(frame)


class LinksRouter(PeerRouter):
    """The PeerRouter over SharedLinks: each peer's port is a LinksPort. With `resequencing`
    (balance's receiver waits for gaps), a receive() waits no longer than the first peer's
    wait, and then passes up what that peer's scheduler releases."""

    port_type = LinksPort
    resequencing = False

    def receive(self, timeout: float) -> list[bytes]:
        if not self.resequencing:
            return super().receive(timeout)
        waits = [(wait, stack) for stack in self.view.stacks.values()
                 if isinstance(stack.port, LinksPort) and stack.port.scheduler is not None
                 and (wait := stack.port.scheduler.release_in()) is not None]
        due = [stack for wait, stack in waits if wait <= 0]
        if due:
            self.wake(due)
        return super().receive(min([timeout, *(wait for wait, _stack in waits if wait > 0)]))


class PeerLinks:
    """Each peer's links as the tunnel shows them (a LinkWatch): a row per peer and link,
    named `PEER/LINK:STATION`, with that peer's state of the link; switches and reordering
    summed over the peers. The per-link hooks do not run (no `lowers`): a link is up for one
    peer and down for another."""

    lowers: tuple[Endpoint, ...] = ()

    def __init__(self, router: PeerRouter) -> None:
        self.router = router

    def _peers(self) -> list[tuple[str, LinksPort, LinkScheduler]]:
        return [(name, stack.port, stack.port.scheduler)
                for name, stack in self.router.view.stacks.items()
                if isinstance(stack.port, LinksPort) and stack.port.scheduler is not None]

    @property
    def switches(self) -> int:
        return sum(scheduler.switches for _name, _port, scheduler in self._peers())

    def link_changes(self) -> list[tuple[str, Change]]:
        changes = []
        for name, port, scheduler in self._peers():
            stations = {lower.name: station.station
                        for lower, station in zip(scheduler.lowers, port.ports, strict=True)}
            changes += [(f"{name}/{stations[link]}", change)
                        for link, change in scheduler.link_changes()]
        return changes

    def link_status(self) -> list[dict[str, Any]]:
        shared = self.router.link
        probes = shared.probes_sent if isinstance(shared, SharedLinks) else 0
        return [{**row, "name": f"{name}/{station.station}", "peer": name,
                 "probes_sent": probes}
                for name, port, scheduler in self._peers()
                for row, station in zip(scheduler.link_status(), port.ports, strict=True)]

    def usable_links(self) -> list[int]:
        """The links (by index) that are not down for some peer."""
        return sorted({port.ports[index].link_index for _name, port, scheduler in self._peers()
                       for index in scheduler.usable_links()})

    def reordering(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for _name, _port, scheduler in self._peers():
            for key, count in scheduler.reordering().items():
                total[key] = total.get(key, 0) + count
        return total
