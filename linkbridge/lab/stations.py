"""`linkbridge lab --stations N`: N hosts on one switch, a multipoint tunnel in each over one
addressed link (the sim: radio medium, a udp: mesh, a KISS hub), an all-pairs ping matrix and
each station's counters; with a topology, stations that do not hear each other reach each
other through the stations between them, which forward IP, and with a hub every station
reaches the others through station A (docs/multipoint.md). With several links, each host is
on one switch per link, and every tunnel has every link, each peer a station on each
(docs/multipoint.md, "Several links per peer")."""

from __future__ import annotations

import contextlib
import socket
import string
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from linkbridge.errors import ConfigError, LinkbridgeError
from linkbridge.lab import netns
from linkbridge.lab.links import await_links_up
from linkbridge.lab.probes import PingResult, ping
from linkbridge.lab.processes import LinkbridgeProcess, running_together
from linkbridge.lab.run import checked_link, usable_links
from linkbridge.lab.topology import Star, link_stats, set_sysctl, star_hosts
from linkbridge.plugin.lab import LabStation, LabStationHosts, LabStations
from linkbridge.plugin.registry import LinkRegistry
from linkbridge.plugin.url import parse_link_url

DEVICE = "lbst0"
NAMES = string.ascii_uppercase
MIN_STATIONS, MAX_STATIONS = 2, len(NAMES)
ETH_P_IP = 0x0800
PACKET_OUTGOING = 4  # an AF_PACKET read of a packet this host sent
PING_TIMEOUT = 2.0  # seconds a request waits for its reply (a slow radio, a forwarder or two)
Row = tuple[str, str, str, str]


def overlay(index: int) -> str:
    """Station N's tunnel address; it owns 198.19.N+1.0/24."""
    return f"198.19.{index + 1}.1"


def owned(index: int) -> str:
    return f"198.19.{index + 1}.0/24"


def next_hops(neighbours: Sequence[Sequence[int]]) -> list[dict[int, list[int]]]:
    """For each station, its neighbours (the peers of its tunnel), each with the stations
    reached through it: the first hop of a shortest path (fewest hops, then the lowest
    neighbour). A station no path reaches is in no list."""
    hops: list[dict[int, list[int]]] = []
    for start in range(len(neighbours)):
        first: dict[int, int] = {n: n for n in sorted(neighbours[start]) if n != start}
        queue = deque(first)
        while queue:
            here = queue.popleft()
            for there in sorted(neighbours[here]):
                if there != start and there not in first:
                    first[there] = first[here]
                    queue.append(there)
        table: dict[int, list[int]] = {n: [] for n in first if first[n] == n}
        for station, hop in sorted(first.items()):
            if station != hop:
                table[hop].append(station)
        hops.append(table)
    return hops


def hub_neighbours(count: int) -> list[tuple[int, ...]]:
    """The peers of a hub lab: station A every other's, all the others A's."""
    return [tuple(range(1, count)), *([(0,)] * (count - 1))]


def link_local(index: int) -> str:
    """Station N's own link-local address (with `with_link_local`), one hop only."""
    return f"fe80::{index + 1}"


def station_args(index: int, stations: Sequence[LabStation],
                 hops: dict[int, list[int]], mtu: int | None,
                 with_link_local: bool = False,
                 more: Sequence[Sequence[LabStation]] = ()) -> list[str]:
    """`linkbridge up` of station `index`: each neighbour a peer that owns its own prefix and
    those of the stations reached through it; `with_link_local`: the station's own link-local
    address and each neighbour's as one more prefix (docs/multipoint.md, "IPv6 link-local and
    multicast"); `more`: the stations of the further links (each peer then has an
    endpoint=LINK:STATION on each link)."""
    links = (stations, *more)
    args = ["up", "--name", DEVICE, *(arg for link in links
                                       for arg in ("--link", str(link[index].url))),
            "--address", f"{overlay(index)}/16"]
    if with_link_local:
        args += ["--address", f"{link_local(index)}/64"]
    for peer, through in sorted(hops.items()):
        allowed = ",".join(f"allowed={owned(n)}" for n in (peer, *through))
        if with_link_local:
            allowed += f",allowed={link_local(peer)}/128"
        endpoints = (f"endpoint={stations[peer].endpoint}" if not more else
                     ",".join(f"endpoint={number}:{link[peer].endpoint}"
                              for number, link in enumerate(links, 1)))
        args += ["--peer", f"{NAMES[peer]},{allowed},{endpoints}"]
    if mtu:
        args += ["--mtu", str(mtu)]
    return args


class TunWatch:
    """Counts the IPv4 packets that arrive at one station's TUN device: for its own address
    and for another (a unicast it should never see, unless it forwards)."""

    def __init__(self, host: str, own: str) -> None:
        with netns.inside(host):
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
        self.sock.bind((DEVICE, 0))
        self.sock.setblocking(False)
        self.own = socket.inet_aton(own)
        self.mine = self.others = 0

    def count(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while True:
                packet, address = self.sock.recvfrom(65536)
                if address[2] == PACKET_OUTGOING or len(packet) < 20 or packet[16] >= 224:
                    continue  # sent here, not IPv4, or multicast
                if packet[16:20] == self.own:
                    self.mine += 1
                else:
                    self.others += 1

    def close(self) -> None:
        self.sock.close()


@dataclass
class StationsReport:
    """What a stations lab measured: pings per ordered pair, each station's TUN figures
    (packets in for itself, for others, device counters) and the link's own rows."""

    names: tuple[str, ...]
    forwarding: bool
    pings: dict[tuple[int, int], PingResult] = field(default_factory=dict)
    mine: list[int] = field(default_factory=list)
    others: list[int] = field(default_factory=list)
    devices: list[dict[str, int]] = field(default_factory=list)
    link_rows: list[Row] = field(default_factory=list)

    @property
    def delivered(self) -> float:
        sent = sum(result.sent for result in self.pings.values())
        return sum(result.received for result in self.pings.values()) / sent if sent else 0.0

    def lines(self) -> list[str]:
        """The ping matrix, each station's counters and the link's rows, as printed."""
        width = max([5, *(len(f"{r.received}/{r.sent}") + 1 for r in self.pings.values())])
        lines = ["pings answered (row: from, column: to):",
                 "     " + "".join(f"{name:>{width}}" for name in self.names)]
        for i, name in enumerate(self.names):
            cells = [f"{self.pings[i, j].received}/{self.pings[i, j].sent}"
                     if (i, j) in self.pings else "-" for j in range(len(self.names))]
            lines.append(f"{name:<5}" + "".join(f"{cell:>{width}}" for cell in cells))
        lines.append(f"delivered {self.delivered * 100:.1f}% of "
                     f"{sum(r.sent for r in self.pings.values())} pings")
        rtts = sorted(rtt for r in self.pings.values() for rtt in r.rtts_ms)
        if rtts:
            lines[-1] += f", round trip median {rtts[len(rtts) // 2]:.0f} ms"
        for i, name in enumerate(self.names):
            device = self.devices[i] if i < len(self.devices) else {}
            others = "forwarded" if self.forwarding else "unicast for others (must be 0)"
            lines.append(f"station {name} ({overlay(i)}): tun in {self.mine[i]} for it, "
                         f"{self.others[i]} {others}; device tx {device.get('tx_packets', 0)} "
                         f"rx {device.get('rx_packets', 0)} packets")
        lines += [f"{label}: {measured} ({configured}; {note})"
                  for label, configured, measured, note in self.link_rows]
        return lines


def lab_stations_link(registry: LinkRegistry, link: str) -> LabStations:
    """The class of `link`, checked (checked_link()); ConfigError for one that cannot run a
    stations lab."""
    url, link_class = checked_link(registry, link)
    if not isinstance(link_class, LabStations):
        raise ConfigError(f"link {url.scheme!r} cannot run lab --stations (it has no station "
                          f"addresses the lab can give); links that can: "
                          f"{usable_links(registry, LabStations)}")
    return link_class


def link_hosts(star: Star, network: int, topology: str | None) -> LabStationHosts:
    """The hosts of `star` as link `network` (0: the first) sees them: their addresses on
    its switch."""
    count = len(star.hosts)
    return LabStationHosts(star.hosts, tuple(star.address_on(network, i) for i in range(count)),
                           tuple(NAMES[:count]), topology)


@contextlib.contextmanager
def stations_up(star: Star, link: str, link_class: LabStations, topology: str | None,
                mtu: int | None, verbose: int = 0, hub: bool = False,
                with_link_local: bool = False, more: Sequence[tuple[str, LabStations]] = ()
                ) -> Iterator[tuple[LabStationHosts, list[LinkbridgeProcess]]]:
    """A tunnel in each host of `star` over `link` (of `link_class`, checked) and the links
    `more` (on the star's further networks), forwarding IP when a topology hides stations
    from each other or station A is the hub; stopped on exit. The peers are the first link's
    neighbours. IPv6 stays off on the tunnels unless `with_link_local` gives each its
    link-local address (no duplicate address detection: the lab's addresses are unique)."""
    count = len(star.hosts)
    hosts = link_hosts(star, 0, topology)
    with link_class.lab_stations(parse_link_url(link), hosts) as stations, \
            contextlib.ExitStack() as joined:
        further = [joined.enter_context(other.lab_stations(parse_link_url(url),
                                                           link_hosts(star, network, topology)))
                   for network, (url, other) in enumerate(more, 1)]
        hops = next_hops(hub_neighbours(count) if hub
                         else [station.neighbours for station in stations])
        for index, host in enumerate(star.hosts):
            if with_link_local:  # no router in the lab to solicit, no duplicate address
                set_sysctl(host, "net/ipv6/conf/default/router_solicitations", "0")
                set_sysctl(host, "net/ipv6/conf/default/accept_dad", "0")
            else:
                set_sysctl(host, "net/ipv6/conf/default/disable_ipv6", "1")  # no router solicits
            if topology is not None or hub:
                set_sysctl(host, "net/ipv4/ip_forward", "1")
                for scope in ("all", "default"):
                    set_sysctl(host, f"net/ipv4/conf/{scope}/send_redirects", "0")
            unreached = set(range(count)) - {index} - {
                n for peer, through in hops[index].items() for n in (peer, *through)}
            if unreached:
                raise ConfigError(f"station {NAMES[index]} reaches no path to "
                                  f"{', '.join(NAMES[n] for n in sorted(unreached))} in the "
                                  "topology")
        processes = [LinkbridgeProcess(
            host, station_args(i, stations, hops[i], mtu, with_link_local, further),
            f"station {NAMES[i]}", verbose=verbose) for i, host in enumerate(star.hosts)]
        with running_together(*processes):
            yield hosts, processes


def ping_matrix(star: Star, count: int, report: StationsReport) -> None:
    """`count` pings for every ordered pair, one at a time across the lab."""
    for i, host in enumerate(star.hosts):
        for j in range(len(star.hosts)):
            if i != j:
                report.pings[i, j] = ping(host, overlay(j), count=count, interval=0.05,
                                          timeout=PING_TIMEOUT)


def run_stations(link: str, count: int, topology: str | None, pings: int, mtu: int | None,
                 registry: LinkRegistry, verbose: int = 0, hub: bool = False,
                 more_links: Sequence[str] = ()) -> StationsReport:
    """Build the lab (over `link` and `more_links`), ping every ordered pair, print the
    report, tear it all down."""
    if not MIN_STATIONS <= count <= MAX_STATIONS:
        raise ConfigError(f"--stations must be {MIN_STATIONS}..{MAX_STATIONS}")
    if pings < 1:
        raise ConfigError("--pair-count must be >= 1")
    if hub and topology is not None:
        raise ConfigError("--hub and --topology both say who is whose peer: give one")
    link_class = lab_stations_link(registry, link)
    more = [(url, lab_stations_link(registry, url)) for url in more_links]
    report = StationsReport(tuple(NAMES[:count]), topology is not None or hub)
    with star_hosts(count, networks=1 + len(more)) as star, \
            stations_up(star, link, link_class, topology, mtu, verbose, hub,
                        more=more) as (hosts, processes):
        if more:
            await_links_up([(f"station {NAMES[i]}", process.proc.pid if process.proc else 0)
                            for i, process in enumerate(processes)], DEVICE)
        watches = [TunWatch(host, overlay(i)) for i, host in enumerate(star.hosts)]
        try:
            ping_matrix(star, pings, report)
            for watch in watches:
                watch.count()
        finally:
            for watch in watches:
                watch.close()
        report.mine = [watch.mine for watch in watches]
        report.others = [watch.others for watch in watches]
        report.devices = [link_stats(host, DEVICE) for host in star.hosts]
        report.link_rows = link_class.lab_station_rows(parse_link_url(link), hosts) + [
            row for network, (url, other) in enumerate(more, 1)
            for row in other.lab_station_rows(parse_link_url(url),
                                              link_hosts(star, network, topology))]
    for line in report.lines():
        print(line)
    if report.delivered == 0.0:
        raise LinkbridgeError("no ping was answered between the lab's stations")
    return report
