"""A multipoint hub with 100 peers in one process (docs/multipoint.md, "The scale figure"), the
short form of `python -m benchmarks peers`: the peers are 100 UDP sockets in another namespace
speaking the plain wire protocol (a frame is the IP packet). Every peer's packet reaches the
hub's host, each peer gets exactly the packet routed to it, the hub's RSS stays <= 100 MB;
then with encryption, the peers being linkbridge's own encrypt layer (benchmarks/
peer_sessions.py): all 100 sessions come up within 30 s, every peer's ping to the hub and to
the next peer (through the hub) is answered, and the hub's 100 sessions share one handshake
thread."""

from __future__ import annotations

import contextlib
import functools
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from benchmarks.peer_sessions import encrypted_peers, ping_around
from benchmarks.peers import (
    FIRST_PEER_PORT,
    HUB_ADDRESS,
    HUB_PORT,
    SESSIONS_TIMEOUT,
    SINK_PORT,
    TARGET_RSS_MB,
    Hub,
    established,
    peer_prefix,
    peer_sockets,
    udp_packet,
    udp_socket,
)
from linkbridge.lab.processes import LinkbridgeProcess
from linkbridge.lab.topology import Star, set_sysctl, star_hosts
from linkbridge.ops.keys import new_private_key, public_key_of
from linkbridge.wire.keys import decode_key, encode_key

PEERS = 100
THREADS_PLAIN = 8  # a bound above what a hub runs (5 plain, 6 encrypted): not one per peer


@pytest.fixture
def star(root: None) -> Iterator[Star]:
    with star_hosts(2) as hosts:
        for host in hosts.hosts:  # no IPv6 of the kernel's own (router solicitations)
            set_sysctl(host, "net/ipv6/conf/default/disable_ipv6", "1")
        yield hosts


def receive_all(sock: socket.socket, count: int) -> list[bytes]:
    sock.settimeout(5.0)
    return [sock.recv(2048) for _ in range(count)]


def test_a_hub_with_100_peers(run_dir: object, star: Star, tmp_path: Path) -> None:
    hub = Hub(star.hosts[0], star.address(0), PEERS, FIRST_PEER_PORT)
    hub.process = LinkbridgeProcess(hub.host, hub.args(star.address(1)), "hub")
    with contextlib.ExitStack() as stack:
        peers = stack.enter_context(peer_sockets(star.hosts[1], star.address(1), hub))
        stack.enter_context(hub.process)
        sink = stack.enter_context(udp_socket(hub.host, (HUB_ADDRESS, SINK_PORT)))
        for index, sock in enumerate(peers):
            sock.send(udp_packet(f"{peer_prefix(index)}.5", HUB_ADDRESS, f"p{index}".encode()))
        arrived = sorted(receive_all(sink, PEERS))
        out = stack.enter_context(udp_socket(hub.host))
        for index in range(PEERS):
            out.sendto(f"to p{index}".encode(), (f"{peer_prefix(index)}.5", SINK_PORT))
        delivered = [receive_all(sock, 1)[0] for sock in peers]
        rss_mb = hub.proc_status("VmRSS") / 1024
        status = hub.status()
        assert hub.proc_status("Threads") <= THREADS_PLAIN
    assert arrived == sorted(f"p{index}".encode() for index in range(PEERS))
    for index, frame in enumerate(delivered):  # its own packet, to its own address
        assert socket.inet_ntoa(frame[16:20]) == f"{peer_prefix(index)}.5", frame.hex()
        assert frame[28:] == f"to p{index}".encode()
    assert rss_mb <= TARGET_RSS_MB, rss_mb
    assert len(status.peers) == PEERS and status.link_side.drops == {}

    hub_private = new_private_key()
    (tmp_path / "hub.key").write_text(hub_private + "\n")
    (tmp_path / "hub.key").chmod(0o600)
    privates = [X25519PrivateKey.generate() for _ in range(PEERS)]
    publics = [encode_key(private.public_key().public_bytes_raw()) for private in privates]
    set_sysctl(hub.host, "net/ipv4/ip_forward", "1")
    hub.process = LinkbridgeProcess(hub.host, hub.args(star.address(1), tmp_path / "hub.key",
                                                       publics), "encrypted hub")
    with hub.process, encrypted_peers(star.hosts[1], star.address(1), hub.first_port,
                                      (hub.address, HUB_PORT),
                                      decode_key(public_key_of(hub_private), "hub"),
                                      privates) as layers:
        pings = ping_around(layers, [f"{peer_prefix(index)}.5" for index in range(PEERS)],
                            HUB_ADDRESS, functools.partial(established, hub), SESSIONS_TIMEOUT)
        threads = hub.proc_status("Threads")
    # every session up, every peer's ping to the hub and to the next peer answered
    assert 0 <= pings.sessions_s <= SESSIONS_TIMEOUT, pings
    assert (pings.hub_answered, pings.peer_answered) == (PEERS, PEERS), pings
    assert threads <= THREADS_PLAIN, threads  # one handshake thread for the 100 peers
