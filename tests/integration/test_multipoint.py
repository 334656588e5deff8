"""Multipoint tunnels (docs/multipoint.md) for real: three linkbridge tunnels in namespaces on
one switch, each with the other two as peers over one udp: socket (a full mesh; two from
--peer, one from a config file's [[peer]] tables), plain, and with each peer's packets
compressed and encrypted in a stack of its own (--compress auto, --private-key, key=),
where a station at b's address with another key gets nothing in. Every pair
pings; unicast reaches only its destination's TUN device, broadcast and multicast every other;
a station forging another's source is dropped and counted at the receiver, a datagram from
an address:port that is no station by the link (encrypted: by the router, as no roaming
peer's); a packet to an address no peer owns is
counted at the sender."""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from linkbridge.lab import netns
from linkbridge.lab.probes import multicast_ping, ping
from linkbridge.lab.processes import LinkbridgeProcess, running_together
from linkbridge.lab.topology import Star, set_sysctl, star_hosts
from linkbridge.ops.keys import new_private_key
from linkbridge.ops.status import collect_status
from linkbridge.ops.status_data import PEER_SIDE, TunnelStatus
from linkbridge.wire.drops import HANDSHAKE_PEER, NO_PEER, ROAM_REFUSED, SOURCE_NOT_ALLOWED
from linkbridge.wire.packet import internet_checksum
from tests.helpers.station_keys import station_keys

STATIONS = 3
PORT = 47400
DEVICE = "lbm0"
NAMES = "abc"
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4  # an AF_PACKET read of a packet this host sent
UNKNOWN_STATION = "unknown_station"  # udp:'s drop of a datagram from no peer's endpoint


def overlay(index: int) -> str:
    """Station N's tunnel address; it owns 198.19.N.0/24."""
    return f"198.19.{index + 1}.1"


@dataclass(frozen=True)
class Layers:
    """What every peer's stack runs: `--compress`, and with `keys` (each station's private
    key file and public key) encryption."""

    compress: str = "off"
    keys: tuple[tuple[str, str], ...] = ()

    @staticmethod
    def encrypted(compress: str, directory: Path) -> Layers:
        return Layers(compress, tuple(station_keys(directory, NAMES)))

    def peer_key(self, index: int) -> str:
        return f",key={self.keys[index][1]}" if self.keys else ""


def station_args(star: Star, index: int, layers: Layers) -> list[str]:
    """`linkbridge up` of station `index`: the others as peers over one udp: socket."""
    args = ["up", "--name", DEVICE, "--link", f"udp:?bind={star.address(index)}:{PORT}",
            "--address", f"{overlay(index)}/16", "--compress", layers.compress]
    if layers.keys:
        args += ["--private-key", layers.keys[index][0]]
    for other in range(STATIONS):
        if other != index:
            args += ["--peer", f"{NAMES[other]},allowed=198.19.{other + 1}.0/24,"
                               f"endpoint={star.address(other)}:{PORT}"
                               + layers.peer_key(other)]
    return args


def station_file(star: Star, index: int, layers: Layers, path: Path) -> list[str]:
    """`linkbridge up -c FILE` of station `index`: its peers as [[peer]] tables."""
    lines = [f'name = "{DEVICE}"', f'link = "udp:?bind={star.address(index)}:{PORT}"',
             f'address = "{overlay(index)}/16"', f'compress = "{layers.compress}"']
    if layers.keys:
        lines.append(f'private-key = "{layers.keys[index][0]}"')
    for other in range(STATIONS):
        if other != index:
            lines += ["[[peer]]", f'name = "{NAMES[other]}"',
                      f'allowed = ["198.19.{other + 1}.0/24"]',
                      f'endpoint = "{star.address(other)}:{PORT}"']
            lines += [f'key = "{layers.keys[other][1]}"'] if layers.keys else []
    path.write_text("\n".join(lines) + "\n")
    return ["up", "-c", str(path)]


@contextlib.contextmanager
def mesh(star: Star, layers: Layers, config: Path) -> Iterator[list[LinkbridgeProcess]]:
    """The three stations, the last from a config file, the others from the command line."""
    args = [station_args(star, index, layers) for index in range(STATIONS - 1)]
    args.append(station_file(star, STATIONS - 1, layers, config))
    stations = [LinkbridgeProcess(host, args[index], f"station {NAMES[index]}")
                for index, host in enumerate(star.hosts)]
    with running_together(*stations):
        yield stations


@pytest.fixture
def star(root: None) -> Iterator[Star]:
    with star_hosts(STATIONS) as hosts:
        for host in hosts.hosts:  # no IPv6 of the kernel's own (router solicitations from ::)
            set_sysctl(host, "net/ipv6/conf/default/disable_ipv6", "1")
        yield hosts


class Sniffer:
    """What arrives at one TUN device (AF_PACKET on it, incoming only)."""

    def __init__(self, host: str, device: str = DEVICE) -> None:
        with netns.inside(host):
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind((device, 0))
        self.sock.setblocking(False)
        self.found: list[bytes] = []

    def markers(self) -> list[bytes]:
        """The UDP payloads of the packets this test marked that arrived so far, sorted."""
        with contextlib.suppress(BlockingIOError):
            while True:
                packet, address = self.sock.recvfrom(65536)
                udp = packet[9] == socket.IPPROTO_UDP and packet[28:31] == b"mp:"
                if address[2] != PACKET_OUTGOING and udp:  # not an ICMP error quoting one
                    self.found.append(packet[28:])
        return sorted(self.found)


def send_udp(host: str, destination: str, payload: bytes, *,
             broadcast: bool = False, multicast_from: str | None = None) -> None:
    with netns.inside(host):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        if broadcast:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        if multicast_from:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                            socket.inet_aton(multicast_from))
        sock.sendto(payload, (destination, 9))


def forged_udp(source: str, destination: str, payload: bytes) -> bytes:
    """An IPv4 UDP packet with any source address (the checksums a kernel checks filled in)."""
    udp = struct.pack("!HHHH", 9, 9, 8 + len(payload), 0) + payload
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, socket.IPPROTO_UDP,
                         0, socket.inet_aton(source), socket.inet_aton(destination))
    return header[:10] + internet_checksum(header).to_bytes(2, "big") + header[12:] + udp


def statuses(stations: list[LinkbridgeProcess]) -> list[TunnelStatus]:
    by_pid = {tunnel.pid: tunnel for tunnel in collect_status()}
    return [by_pid[station.proc.pid] for station in stations if station.proc]


def until(done: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(0.05)


def stranger_counted(b: TunnelStatus, layers: Layers) -> int:
    """How often b counted a datagram from an address:port that is no station: its link
    (unknown_station), or with encryption its router, as no peer's session vouched for it
    (roam_refused, docs/multipoint.md#roaming)."""
    if layers.keys:
        return b.link_side.drops.get(ROAM_REFUSED, 0)
    return 0 if b.link_side.below is None else b.link_side.below.drops.get(UNKNOWN_STATION, 0)


def impostor_gets_nothing_in(star: Star, layers: Layers, stations: list[LinkbridgeProcess],
                             directory: Path) -> Mapping[str, int]:
    """Station b replaced, at its address, by one with a key of its own: its pings to a get
    no answer. The drops of a's encrypt layer for peer b, once they count the impostor."""
    key = directory / "impostor.key"
    key.write_text(new_private_key() + "\n")
    key.chmod(0o600)
    args = station_args(star, 1, layers)
    args[args.index("--private-key") + 1] = str(key)
    stations[1].stop()
    with LinkbridgeProcess(star.hosts[1], args, "impostor"):
        answered = ping(star.hosts[1], overlay(0), count=2, interval=0.01, timeout=0.5)

        def encrypt_drops() -> Mapping[str, int]:
            a_b = dict(statuses(stations[:1])[0].peers)["b"]
            return next(layer.drops for layer in a_b.stack() if layer.encryption)

        until(lambda: HANDSHAKE_PEER in encrypt_drops())
        assert answered.received == 0, answered
        return encrypt_drops()


@pytest.mark.parametrize("variant", ["plain", "compressed+encrypted"])
def test_a_mesh_of_three_stations(run_dir: object, star: Star, tmp_path: Path,
                                  variant: str) -> None:
    layers = Layers() if variant == "plain" else Layers.encrypted("auto", tmp_path)
    with mesh(star, layers, tmp_path / "c.toml") as stations:
        for index, host in enumerate(star.hosts):
            for other in range(STATIONS):
                if other != index:
                    result = ping(host, overlay(other), count=2, interval=0.01)
                    assert result.received == 2, (NAMES[index], NAMES[other], result)

        sniffers = [Sniffer(host) for host in star.hosts]
        sent: list[tuple[int, bytes]] = []  # (destination station, payload)
        for index, host in enumerate(star.hosts):
            for other in range(STATIONS):
                if other != index:
                    payload = f"mp:{NAMES[index]}>{NAMES[other]}".encode()
                    send_udp(host, overlay(other), payload)
                    sent.append((other, payload))
        send_udp(star.hosts[0], "198.19.255.255", b"mp:broadcast", broadcast=True)
        send_udp(star.hosts[0], "239.1.2.3", b"mp:multicast", multicast_from=overlay(0))
        send_udp(star.hosts[0], "198.19.99.1", b"mp:nobody")  # the /16, but no peer's /24
        send_udp(star.hosts[0], "198.19.99.2", b"mp:nobody")
        with netns.inside(star.hosts[1]):  # b speaks for c
            raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        with raw:
            raw.sendto(forged_udp("198.19.3.7", overlay(0), b"mp:forged"), (overlay(0), 0))

        with netns.inside(star.hosts[0]):  # a's host, but from a port that is no station
            stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with stranger:
            stranger.sendto(forged_udp(overlay(0), overlay(1), b"mp:stranger"),
                            (star.address(1), PORT))

        def counted() -> bool:
            a, b, _c = statuses(stations)
            return (a.link_side.drops.get(NO_PEER) == 2
                    and dict(a.peers)["b"].drops.get(SOURCE_NOT_ALLOWED) == 1
                    and stranger_counted(b, layers) == 1)

        until(counted)
        expected = [sorted([payload for to, payload in sent if to == index]
                           + ([] if index == 0 else [b"mp:broadcast", b"mp:multicast"]))
                    for index in range(STATIONS)]
        until(lambda: [sniffer.markers() for sniffer in sniffers] == expected, 1.0)
        seen = [sniffer.markers() for sniffer in sniffers]
        a, b, c = statuses(stations)
        for sniffer in sniffers:
            sniffer.sock.close()
        if layers.keys:
            impostor = impostor_gets_nothing_in(star, layers, stations, tmp_path)

    assert a.link_side.drops.get(NO_PEER) == 2, a
    a_peers = dict(a.peers)
    assert a_peers["b"].drops == {SOURCE_NOT_ALLOWED: 1}, a_peers
    assert a_peers["c"].drops == {}, a_peers
    assert stranger_counted(b, layers) == 1 and b.link_side.below is not None, b
    assert b.link_side.below.drops == ({} if layers.keys else {UNKNOWN_STATION: 1}), b
    assert [label for label, _side in a.sides()] == [
        "tunnel", "link", PEER_SIDE + "b", PEER_SIDE + "c"]
    assert all(dict(tunnel.peers)[NAMES[0]].rx_packets >= 4 for tunnel in (b, c))
    if layers.keys:  # each peer's own compressor and session carried a's pings
        assert impostor.get(HANDSHAKE_PEER, 0) > 0, impostor  # b's address, not b's key
        for side in (*a_peers.values(), dict(b.peers)["a"], dict(c.peers)["a"]):
            assert side.compression is not None and side.compression.tx.compressed > 0, side
            sessions = [layer.encryption for layer in side.stack() if layer.encryption]
            assert [session.state for session in sessions] == ["established"], side
    # each TUN device saw exactly the unicast meant for it, and the groups from a
    assert seen == expected


def link_local_args(star: Star, index: int) -> list[str]:
    """station_args() plus the station's own link-local address fe80::N and each peer's as
    one of its prefixes."""
    args = [*station_args(star, index, Layers()), "--address", f"fe80::{index + 1}/64"]
    for position, value in enumerate(args):
        if args[position - 1] == "--peer":
            other = NAMES.index(value[0])
            args[position] = value.replace(",endpoint=",
                                           f",allowed=fe80::{other + 1}/128,endpoint=")
    return args


def all_nodes_answers(host: str) -> set[str]:
    """The addresses that answer one echo request to ff02::1 on the tunnel from `host`."""
    return set(multicast_ping(host, f"ff02::1%{DEVICE}"))


def test_link_local_unicast_and_all_nodes_multicast_reach_the_right_peers(
        run_dir: object, root: None) -> None:
    """With a link-local address of its own on each station (and none of the kernel's) and
    each peer owning its fe80::N/128: an echo request to ff02::1 on the tunnel is answered by
    both other stations (and a's own host), and link-local unicast reaches its peer."""
    with star_hosts(STATIONS) as star:
        stations = [LinkbridgeProcess(host, link_local_args(star, index),
                                      f"station {NAMES[index]}")
                    for index, host in enumerate(star.hosts)]
        with running_together(*stations):
            everyone = {"fe80::1", "fe80::2", "fe80::3"}  # a's own host answers too
            answered: set[str] = set()
            deadline = time.monotonic() + 10  # the addresses may still be tentative (DAD)
            while answered != everyone and time.monotonic() < deadline:
                answered = all_nodes_answers(star.hosts[0])
            assert answered == everyone
            assert ping(star.hosts[0], f"fe80::3%{DEVICE}", count=3).received == 3
            assert ping(star.hosts[2], f"fe80::2%{DEVICE}", count=3).received == 3
            drops = [status.link_side.drops for status in statuses(stations)]
            assert not any(SOURCE_NOT_ALLOWED in counted for counted in drops), drops
