"""A multipoint hub with 100 peers in one process (docs/multipoint.md, "The scale figure"), the
short form of `python -m benchmarks peers`: the peers are 100 UDP sockets in another namespace
speaking the plain wire protocol (a frame is the IP packet). Every peer's packet reaches the
hub's host, each peer gets exactly the packet routed to it, the hub's RSS stays <= 100 MB,
and with encryption the 100 peers' handshakes share one thread."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.peers import (
    FIRST_PEER_PORT,
    HUB_ADDRESS,
    SINK_PORT,
    TARGET_RSS_MB,
    Hub,
    peer_prefix,
    peer_sockets,
    udp_packet,
    udp_socket,
)
from linkbridge.lab.processes import LinkbridgeProcess
from linkbridge.lab.topology import Star, set_sysctl, star_hosts
from linkbridge.ops.keys import new_private_key

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

    (tmp_path / "hub.key").write_text(new_private_key() + "\n")
    (tmp_path / "hub.key").chmod(0o600)
    with LinkbridgeProcess(hub.host, hub.args(star.address(1), tmp_path), "encrypted hub") \
            as encrypted:
        hub.process = encrypted
        time.sleep(0.5)  # every peer's first initiation on its way
        threads = hub.proc_status("Threads")
        sessions = [layer.encryption for _name, side in hub.status().peers
                    for layer in side.stack() if layer.encryption]
    assert len(sessions) == PEERS
    assert threads <= THREADS_PLAIN, threads  # one handshake thread for the 100 peers
