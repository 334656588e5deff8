"""Roaming on udp: (docs/multipoint.md, "Roaming") for real: an encrypted hub with peers b and
c in namespaces on one switch. Station b's socket (bound to any address) changes its source
address in the middle of a ping to the hub: the hub's replies follow it at once, and the hub
reaches b at its new address. A genuine frame of b, captured on the hub's wire and replayed
from c's namespace, and a forged one, move nothing: the hub still reaches b, the replaying
socket gets nothing, and both count as roam_refused. b restarted on another port (a new
session: its initiation comes from there) is found there too. The udp: link itself, on
loopback (IPv4 and IPv6): strangers named, a station moved."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from linkbridge_udp import UdpLink
from pyroute2 import IPRoute

from linkbridge.datapath.endpoint import STRANGER, StationReturnPaths
from linkbridge.lab import netns
from linkbridge.lab.probes import PingResult, ping
from linkbridge.lab.processes import LinkbridgeProcess, running_together
from linkbridge.lab.topology import STAR_NETWORK, STAR_PREFIX, Star, set_sysctl, star_hosts
from linkbridge.ops.keys import new_private_key, public_key_of
from linkbridge.plugin import RoamingLink
from linkbridge.plugin.registry import link_from_url
from linkbridge.wire.drops import ROAM_REFUSED
from linkbridge.wire.frames import TRANSPORT_DATA, type_nibble
from tests.integration.test_multipoint import ETH_P_ALL, statuses

PORT = 47400
DEVICE = "lbr0"
NAMES = ("hub", "b", "c")
MOVED = f"{STAR_NETWORK}.12"  # b's new underlay address


def overlay(index: int) -> str:
    return f"198.19.{index + 1}.1"


def args_of(star: Star, index: int, keys: list[tuple[Path, str]]) -> list[str]:
    """The hub (0) has b and c as peers; b (its socket on any address, so that its source
    follows the routes) and c have the hub."""
    bind = "0.0.0.0" if index == 1 else star.address(index)
    args = ["up", "--name", DEVICE, "--link", f"udp:?bind={bind}:{PORT}",
            "--address", f"{overlay(index)}/16", "--private-key", str(keys[index][0])]
    for other in ((1, 2) if index == 0 else (0,)):
        args += ["--peer", f"{NAMES[other]},allowed=198.19.{other + 1}.0/24,"
                           f"endpoint={star.address(other)}:{PORT},key={keys[other][1]}"]
    return args


def make_keys(directory: Path) -> list[tuple[Path, str]]:
    """A private key file and the public key of each of NAMES."""
    made = []
    for name in NAMES:
        private, path = new_private_key(), directory / f"{name}.key"
        path.write_text(private + "\n")
        path.chmod(0o600)
        made.append((path, public_key_of(private)))
    return made


@contextlib.contextmanager
def three_hosts() -> Iterator[Star]:
    """The hub's, b's and c's namespaces on one switch."""
    with star_hosts(len(NAMES)) as hosts:
        for host in hosts.hosts:  # no IPv6 of the kernel's own (router solicitations from ::)
            set_sysctl(host, "net/ipv6/conf/default/disable_ipv6", "1")
        yield hosts


@pytest.fixture
def keys(tmp_path: Path) -> list[tuple[Path, str]]:
    return make_keys(tmp_path)


@pytest.fixture
def star(root: None) -> Iterator[Star]:
    with three_hosts() as hosts:
        yield hosts


def move_address(star: Star) -> None:
    """b's underlay address becomes MOVED (the old one gone), as a NAT that changed its
    mapping or a host on another network would make it."""
    set_sysctl(star.hosts[1], f"net/ipv4/conf/{star.veth}/promote_secondaries", "1")
    with netns.inside(star.hosts[1]), IPRoute() as ns:
        veth = ns.link_lookup(ifname=star.veth)[0]
        ns.addr("add", index=veth, address=MOVED, prefixlen=STAR_PREFIX)
        ns.addr("del", index=veth, address=star.address(1), prefixlen=STAR_PREFIX)


def transport_frame_from(star: Star, source: str, hub: LinkbridgeProcess) -> bytes:
    """A transport data frame from `source` to the hub's port, read off the hub's veth while
    b pings the hub."""
    with netns.inside(star.hosts[0]):
        sniffer = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    with sniffer:
        sniffer.bind((star.veth, 0))
        assert ping(star.hosts[1], overlay(0), count=2, interval=0.01).received == 2
        sniffer.setblocking(False)
        while True:
            frame = sniffer.recv(65536)  # BlockingIOError: none came, the test fails
            ip = frame[14:]
            if frame[12:14] != b"\x08\x00" or ip[9] != socket.IPPROTO_UDP:
                continue
            udp = ip[(ip[0] & 0x0F) * 4:]
            payload = udp[8:]
            if (socket.inet_ntoa(ip[12:16]) == source and struct.unpack("!H", udp[2:4])[0] == PORT
                    and payload and type_nibble(payload[0]) == TRANSPORT_DATA):
                return payload


def moves_logged(hub: LinkbridgeProcess) -> list[str]:
    return [line for line in hub.output().splitlines() if " moved to " in line]


def test_an_authenticated_peer_roams_and_a_replay_moves_nothing(
        run_dir: object, star: Star, keys: list[tuple[Path, str]]) -> None:
    hub, b, c = (LinkbridgeProcess(host, args_of(star, index, keys), NAMES[index],
                                   verbose=index == 0)
                 for index, host in enumerate(star.hosts))
    with running_together(hub, b, c):
        assert ping(star.hosts[1], overlay(0), count=3, interval=0.01).received == 3
        assert ping(star.hosts[2], overlay(0), count=3, interval=0.01).received == 3

        result: list[PingResult] = []
        pinging = threading.Thread(target=lambda: result.append(
            ping(star.hosts[1], overlay(0), count=30, interval=0.03)))
        pinging.start()
        time.sleep(0.3)  # some pings from the old address first
        move_address(star)
        pinging.join()
        (during,) = result
        assert during.sent == 30 and during.received >= 29, during  # one in flight at most
        moved = moves_logged(hub)
        assert len(moved) == 1 and f"{star.address(1)}:{PORT} moved to {MOVED}:{PORT}" in moved[0]
        # the hub reaches b where it is now, first
        assert ping(star.hosts[0], overlay(1), count=3, interval=0.01).received == 3

        genuine = transport_frame_from(star, MOVED, hub)
        refused = statuses([hub])[0].link_side.drops.get(ROAM_REFUSED, 0)
        with netns.inside(star.hosts[2]):
            replayer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with replayer:
            replayer.bind((star.address(2), 0))
            replayer.sendto(genuine, (star.address(0), PORT))  # a replay of b's frame
            replayer.sendto(bytes([TRANSPORT_DATA << 4]) + os.urandom(60),  # a forged one
                            (star.address(0), PORT))
            deadline = time.monotonic() + 5
            while (statuses([hub])[0].link_side.drops.get(ROAM_REFUSED, 0) < refused + 2
                   and time.monotonic() < deadline):
                time.sleep(0.05)
            assert ping(star.hosts[0], overlay(1), count=3, interval=0.01).received == 3
            replayer.setblocking(False)
            with pytest.raises(BlockingIOError):
                replayer.recv(65536)  # the hub sent nothing to the replaying socket
        assert statuses([hub])[0].link_side.drops.get(ROAM_REFUSED, 0) == refused + 2
        assert len(moves_logged(hub)) == 1
        assert ping(star.hosts[2], overlay(0), count=2, interval=0.01).received == 2

        b.stop()  # b restarts on another port: a new session, its initiation from there
        args = args_of(star, 1, keys)
        args[args.index("--link") + 1] = f"udp:?bind=0.0.0.0:{PORT + 1}"
        with LinkbridgeProcess(star.hosts[1], args, "b again"):
            assert ping(star.hosts[1], overlay(0), count=3, interval=0.01).received == 3
            assert ping(star.hosts[0], overlay(1), count=3, interval=0.01).received == 3
        moved = moves_logged(hub)
        assert len(moved) == 2 and f"moved to {MOVED}:{PORT + 1}" in moved[1], moved


def test_a_roamed_peer_keeps_its_address_across_a_reload_that_adds_a_peer(
        run_dir: object, star: Star, keys: list[tuple[Path, str]], tmp_path: Path) -> None:
    """The hub runs from a config file with b its one peer; b roams (it pings from its new
    address) and a reload adds c: the hub's pings reach b at once where it roamed, before
    b sent anything more (b is quiet: no keepalives), and c answers."""
    args = args_of(star, 0, keys)
    b_peer, c_peer = (args[at + 1] for at, arg in enumerate(args) if arg == "--peer")
    config = tmp_path / "hub.toml"

    def hub_file(*peers: str) -> None:
        config.write_text("\n".join([
            f'name = "{DEVICE}"', f'link = "udp:?bind={star.address(0)}:{PORT}"',
            f'address = "{overlay(0)}/16"', f'private-key = "{keys[0][0]}"',
            "peer = [" + ", ".join(f'"{peer}"' for peer in peers) + "]"]) + "\n")

    hub_file(b_peer)
    hub = LinkbridgeProcess(star.hosts[0], ["up", "-c", str(config)], "hub", verbose=1)
    b, c = (LinkbridgeProcess(star.hosts[index], args_of(star, index, keys), NAMES[index])
            for index in (1, 2))
    with running_together(hub, b, c):
        assert ping(star.hosts[1], overlay(0), count=2, interval=0.01).received == 2
        move_address(star)
        assert ping(star.hosts[1], overlay(0), count=2, interval=0.01).received == 2
        assert len(moves_logged(hub)) == 1
        hub_file(b_peer, c_peer)
        assert hub.proc is not None
        os.kill(hub.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 5
        while "peers changed by reload" not in hub.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        to_b = ping(star.hosts[0], overlay(1), count=3, interval=0.01)
        to_c = ping(star.hosts[0], overlay(2), count=3, interval=0.01)
        log = hub.output()
    assert "peers changed by reload: c added" in log, log
    assert to_b.received == 3, to_b  # at b's new address: the reload kept it
    assert to_c.received == 3, to_c
    assert len(moves_logged(hub)) == 1  # b never had to move again


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_the_udp_link_names_strangers_and_moves_a_station(host: str) -> None:
    """On loopback: before let_roam() a datagram from no station is the link's drop; after,
    it comes up as the mark and its HOST:PORT ([::1]:PORT for IPv6), and move() sends the
    station's frames there and names its datagrams from there by the station."""
    wrap = f"[{host}]" if ":" in host else host
    first, moved, own = (socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                                       socket.SOCK_DGRAM) for _ in range(3))
    with first, moved, own:
        for sock in (first, moved, own):
            sock.bind((host, 0))
            sock.settimeout(2.0)
        station = f"{wrap}:{first.getsockname()[1]}"
        link = link_from_url(f"udp:?bind={wrap}:{own.getsockname()[1]}")
        own.close()  # its port is the link's now
        assert isinstance(link, UdpLink) and isinstance(link, RoamingLink)
        link.set_stations([station])
        link.open()
        try:
            address = link.bind
            moved.sendto(b"early", address)
            assert until_received(link, [])
            assert link.counters.drops == {"unknown_station": 1}
            link.let_roam(STRANGER)
            moved.sendto(b"roaming", address)
            stranger = f"{STRANGER}{wrap}:{moved.getsockname()[1]}"
            assert until_received(link, [(stranger, b"roaming")])
            link.move(station, stranger)
            link.send_to(station, b"to the moved station")
            assert moved.recv(100) == b"to the moved station"
            moved.sendto(b"from there", address)
            first.sendto(b"from the old address", address)
            assert until_received(link, [(station, b"from there"),
                                         (f"{STRANGER}{station}", b"from the old address")])
        finally:
            link.close()


def test_a_moved_station_stays_where_it_roamed_when_a_reload_adds_a_station() -> None:
    """set_stations() again with the same station and one more (a reload that adds a peer):
    the moved station keeps its new address, the new one is where it was given."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(4)]
    with contextlib.ExitStack() as stack:
        for sock in sockets:
            stack.enter_context(sock)
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(2.0)
        first, moved, added, own = sockets
        station, other = (f"127.0.0.1:{sock.getsockname()[1]}" for sock in (first, added))
        link = link_from_url(f"udp:?bind=127.0.0.1:{own.getsockname()[1]}")
        own.close()
        assert isinstance(link, UdpLink) and isinstance(link, StationReturnPaths)
        link.set_stations([station])
        link.open()
        stack.callback(link.close)
        link.let_roam(STRANGER)
        link.move(station, f"{STRANGER}127.0.0.1:{moved.getsockname()[1]}")
        link.set_stations([station, other])  # what PeerRouter.update() gives it
        assert link.station_address(station) == f"127.0.0.1:{moved.getsockname()[1]}"
        link.send_to(station, b"to where it roamed")
        link.send_to(other, b"to the added one")
        assert moved.recv(100) == b"to where it roamed"
        assert added.recv(100) == b"to the added one"
        moved.sendto(b"still its own", link.bind)
        first.sendto(b"a stranger's", link.bind)
        assert until_received(link, [(station, b"still its own"),
                                     (f"{STRANGER}{station}", b"a stranger's")])
        link.set_stations([other])  # a reload that removes it forgets where it was
        link.set_stations([station, other])
        assert link.station_address(station) == station
        there = f"127.0.0.1:{moved.getsockname()[1]}"
        link.move(station, STRANGER + there)
        link.set_stations([station, other, there])  # a station given where it roamed: that
        assert link.station_address(station) == station  # one is there, it is back at its own
        assert link.station_address(there) == there


def until_received(link: UdpLink, expected: list[tuple[str, bytes]]) -> bool:
    """Whether the link's receive_from() gives `expected` within 2 s (nothing: after 0.2 s)."""
    received: list[tuple[str, bytes]] = []
    deadline = time.monotonic() + (2.0 if expected else 0.2)
    while len(received) < len(expected) or not expected:
        if time.monotonic() >= deadline:
            break
        received += link.receive_from(0.05)
    return received == expected
