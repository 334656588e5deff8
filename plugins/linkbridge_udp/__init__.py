"""The `udp:` link: each packet is one UDP datagram to a remote host:port, or, with no target,
to the stations of a multipoint tunnel's peers (an AddressedLink: docs/multipoint.md).

Registered through the `linkbridge` entry-point group like any third-party plugin.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from linkbridge.plugin import (
    MIN_FRAME_SIZE,
    ConfigError,
    DatagramEndpoint,
    Link,
    LinkError,
    LinkUrl,
    Option,
    RawPort,
    drops,
    format_address,
    hookimpl,
    host_port,
    integer,
)
from linkbridge.plugin.lab import LabSides, LabStation, LabStationHosts

LAB_PORT = 47000
UNKNOWN_STATION = "unknown_station"
Address = tuple[str, int]


class UdpLink(Link):
    """Carries packets as UDP datagrams; accepts datagrams from the configured peer only, or
    with no target from the stations set_stations() gives (many peers on one socket)."""

    scheme = "udp"
    summary = "each packet as one UDP datagram to a remote host:port"
    target_help = ("REMOTE_HOST:PORT (IPv6 as [ADDR]:PORT); none with --peer, whose endpoint= "
                   "give the stations (then bind= is needed)")
    drop_reasons: ClassVar[Mapping[str, str]] = {
        UNKNOWN_STATION: "a datagram from an address:port that is no peer's endpoint= "
                         "(multipoint)"}
    options = (
        Option("bind", host_port, None,
               "local HOST:PORT to receive on (default: any address, the remote's port)"),
        Option("mtu", integer(MIN_FRAME_SIZE, 65507), None,
               "largest packet carried (default: no limit); below 68 only with fragmentation "
               "(a larger --mtu)"),
    )

    def __init__(self, target: str, options: Mapping[str, Any]) -> None:
        super().__init__(target, options)
        self._stations: dict[Address, str] = {}  # multipoint: address -> station as given
        self._addresses: dict[str, Address] = {}  # and back
        self._roam_mark: str | None = None  # let_roam(): strangers' datagrams are returned
        self._endpoint: DatagramEndpoint | None = None
        if not target:
            if options["bind"] is None:
                raise ConfigError("link udp: without a target (a multipoint tunnel's) needs "
                                  "bind=HOST:PORT")
            self.remote: Address | None = None
            self.bind: Address = options["bind"]
            return
        try:
            self.remote = host_port(target)
        except ValueError as exc:
            raise ConfigError(f"link udp:{target}: bad target: {exc}") from None
        wildcard = "::" if ":" in self.remote[0] else "0.0.0.0"
        self.bind = options["bind"] or (wildcard, self.remote[1])

    @property
    def mtu(self) -> int | None:
        value: int | None = self.config["mtu"]
        return value

    def set_stations(self, stations: Sequence[str]) -> None:
        """The stations of a multipoint tunnel's peers, each HOST:PORT (AddressedLink); they
        replace those given before, also while the link runs (a reload), and a station given
        again stays where it moved (RoamingLink: it roamed there)."""
        if self.remote is not None:
            raise ConfigError(f"link {self.name} names one peer: with --peer give udp: no "
                              f"target (udp:?bind=HOST:PORT); each endpoint= is a station")
        family = ":" in self.bind[0]
        addresses: dict[str, Address] = {}
        for station in stations:
            try:
                address = host_port(station)
            except ValueError as exc:
                raise ConfigError(f"link {self.name}: endpoint {station!r}: {exc}") from None
            if (":" in address[0]) != family:
                raise ConfigError(f"link {self.name}: endpoint {station!r} is not of the IP "
                                  f"version of bind={format_address(self.bind)}")
            addresses[station] = address
        given = set(addresses.values())
        for station, roamed in self._addresses.items():  # where a station moved, unless a
            if station in addresses and roamed not in given:  # station is given there now
                addresses[station] = roamed
        # replaced whole: a reload gives the running link its new stations
        self._addresses = addresses
        self._stations = {address: station for station, address in addresses.items()}

    def open(self) -> None:
        if self.remote is not None:
            self._endpoint = DatagramEndpoint(self.name, self.bind, self.remote)
        elif self._stations:
            self._endpoint = DatagramEndpoint(self.name, self.bind, next(iter(self._stations)),
                                              accept=lambda _source: True)
        else:
            raise LinkError(f"{self.name}: no target and no stations (udp: without a target "
                            "serves a multipoint tunnel's peers, --peer ...,endpoint=)")
        self.counters = self._endpoint.counters

    def _socket(self) -> DatagramEndpoint:
        if self._endpoint is None:
            raise LinkError(f"{self.name}: link is not open")
        return self._endpoint

    def send(self, packet: bytes) -> None:
        if self.remote is None:
            self.send_all(packet)
        elif self.mtu is not None and len(packet) > self.mtu:
            self.counters.drop(drops.MTU)
        else:
            self._socket().send(packet)

    def send_many(self, packets: list[bytes]) -> None:
        """Send a batch in order; the socket sends runs of equal-size packets in one call."""
        if self.remote is None:
            for packet in packets:
                self.send_all(packet)
            return
        mtu = self.mtu
        if mtu is not None and any(len(packet) > mtu for packet in packets):
            self.counters.drop(drops.MTU, sum(len(packet) > mtu for packet in packets))
            packets = [packet for packet in packets if len(packet) <= mtu]
        self._socket().send_many(packets)

    def send_segments(self, pieces: Sequence[bytes | memoryview], size: int, count: int,
                      length: int) -> bool:
        """Send a run of datagrams given as the pieces they are made of in one call (the
        offload layer's chunks: DatagramEndpoint.send_segments()); False, with nothing sent,
        without a single peer or with datagrams longer than the MTU."""
        if self.remote is None or (self.mtu is not None and size > self.mtu):
            return False
        return self._socket().send_segments(pieces, size, count, length)

    def send_to(self, station: str, frame: bytes) -> None:
        """Send `frame` to one station given to set_stations() (another is counted as
        unknown_station)."""
        if self.mtu is not None and len(frame) > self.mtu:
            self.counters.drop(drops.MTU)
            return
        address = self._addresses.get(station)
        if address is None:  # a station a reload just took away
            self.counters.drop(UNKNOWN_STATION)
            return
        self._socket().send(frame, address)

    def send_all(self, frame: bytes) -> None:
        """Send `frame` to every station, one datagram each."""
        if self.mtu is not None and len(frame) > self.mtu:
            self.counters.drop(drops.MTU)
            return
        endpoint = self._socket()
        for address in self._stations:
            endpoint.send(frame, address)

    def receive(self, timeout: float) -> list[bytes]:
        if self.remote is None:
            return [frame for _station, frame in self.receive_from(timeout)]
        return self._socket().receive(timeout)

    def receive_runs(self, timeout: float) -> list[tuple[bytes, int]]:
        """receive() with each read as it came: a run UDP GRO coalesced stays whole, (data,
        datagram size), for the offload layer (DatagramEndpoint.receive_runs())."""
        if self.remote is None:
            return [(frame, 0) for frame in self.receive(timeout)]
        return self._socket().receive_runs(timeout)

    def receive_from(self, timeout: float) -> list[tuple[str, bytes]]:
        """The datagrams from the stations, each with its station; others are counted as
        unknown_station, or once let_roam() was called returned with the mark and their
        source."""
        received = []
        stations, mark = self._stations, self._roam_mark
        for source, frame in self._socket().receive_from(timeout):
            station = stations.get(source)
            if station is not None:
                received.append((station, frame))
            elif mark is not None:
                received.append((mark + format_address(source), frame))
            else:
                self.counters.drop(UNKNOWN_STATION)
        return received

    def let_roam(self, mark: str) -> None:
        """Return datagrams from sources no station has, named `mark` + HOST:PORT (RoamingLink:
        the tunnel's encryption decides whether a station moves there)."""
        self._roam_mark = mark

    def move(self, station: str, stranger: str) -> None:
        """Put `station` at the source `stranger` names (as receive_from() named it); its old
        address is a stranger from now on. The maps are replaced, not changed, so that the
        sending thread never sees one half-moved."""
        address = host_port(stranger.removeprefix(self._roam_mark or ""))
        stations = {source: name for source, name in self._stations.items() if name != station}
        stations[address] = station
        self._stations, self._addresses = stations, {**self._addresses, station: address}

    def fileno(self) -> int:
        """The socket's descriptor: the data path waits on it together with the tunnel's."""
        return self._socket().fileno()

    def _peer(self) -> Address:
        if self.remote is None:
            raise LinkError(f"{self.name}: a multipoint link has no one peer")
        return self.remote

    def return_address(self) -> str:
        """The peer's address, the only one it accepts frames from (cookie replies prove it)."""
        return format_address(self._peer())

    def station_address(self, station: str) -> str:
        """The address `station`'s datagrams come from and go to now (StationReturnPaths: it
        moves when the station roams); the station as given when a reload took it away."""
        address = self._addresses.get(station)
        return station if address is None else format_address(address)

    def raw_port(self) -> RawPort:
        """The socket for the data path's lean loop, which applies this link's MTU too."""
        self._peer()
        return self._socket().raw_port(self.mtu)

    def close(self) -> None:
        if self._endpoint is not None:
            self._endpoint.close()
            self._endpoint = None  # later use is a LinkError, not an OSError on a closed fd

    @classmethod
    @contextlib.contextmanager
    def lab_pair(cls, url: LinkUrl, sides: LabSides) -> Iterator[tuple[LinkUrl, LinkUrl]]:
        if url.target or "bind" in url.options:
            raise ConfigError("the lab chooses the udp: addresses itself; give options only "
                              "(e.g. udp:?mtu=1400)")
        yield (
            url.with_target(format_address((sides.b_address, LAB_PORT))),
            url.with_target(format_address((sides.a_address, LAB_PORT))),
        )

    @classmethod
    @contextlib.contextmanager
    def lab_stations(cls, url: LinkUrl, hosts: LabStationHosts) -> Iterator[list[LabStation]]:
        """A full mesh: each station one socket on its host's address, every other its peer."""
        if url.target or "bind" in url.options:
            raise ConfigError("the lab chooses the udp: addresses itself; give options only "
                              "(e.g. udp:?mtu=1400)")
        if hosts.topology is not None:
            raise ConfigError("udp: stations all reach each other: --topology needs the sim: "
                              "radio medium (sim:?duplex=half&...)")
        count = len(hosts.names)
        yield [LabStation(LinkUrl("udp", "", {**url.options,
                                              "bind": format_address((address, LAB_PORT))}),
                          format_address((address, LAB_PORT)),
                          tuple(other for other in range(count) if other != index))
               for index, address in enumerate(hosts.addresses)]

    @classmethod
    def lab_station_rows(cls, url: LinkUrl,
                         hosts: LabStationHosts) -> list[tuple[str, str, str, str]]:
        """None: udp: has no counters beyond the tunnels'."""
        return []


@hookimpl
def linkbridge_register_links() -> list[type[Link]]:
    return [UdpLink]
