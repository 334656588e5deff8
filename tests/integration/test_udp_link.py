"""The udp: link and the local ports on real loopback sockets: delivery, peer filter, errors."""

from __future__ import annotations

import errno
import socket

import pytest

from linkbridge.datapath.datagram import DatagramEndpoint, same_host
from linkbridge.datapath.ports import link_ports, tunnel_ports
from linkbridge.errors import LinkError
from linkbridge.plugin import free_port
from linkbridge.plugin.registry import LinkRegistry, get_plugin_manager
from tests.helpers.namespace_state import icmp_unreachables


def test_pair_of_udp_links_carries_packets_both_ways() -> None:
    registry = LinkRegistry(get_plugin_manager())
    port_a, port_b = free_port(), free_port()
    a = registry.create_link(f"udp:127.0.0.1:{port_b}?bind=127.0.0.1:{port_a}")
    b = registry.create_link(f"udp:127.0.0.1:{port_a}?bind=127.0.0.1:{port_b}")
    a.open()
    b.open()
    try:
        a.send(b"one")
        a.send(b"two")
        got: list[bytes] = []
        while len(got) < 2:
            got += b.receive(1.0)
        assert got == [b"one", b"two"]
        b.send(b"back")
        assert a.receive(1.0) == [b"back"]
        assert a.counters.tx_packets == 2
        assert b.counters.rx_bytes == 6
    finally:
        a.close()
        b.close()


def test_udp_link_drops_and_counts_strangers_and_oversize() -> None:
    registry = LinkRegistry(get_plugin_manager())
    port_a, port_b = free_port(), free_port()
    link = registry.create_link(f"udp:127.0.0.1:{port_b}?bind=127.0.0.1:{port_a}&mtu=100")
    link.open()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
            stranger.sendto(b"intruder", ("127.0.0.1", port_a))  # right host, wrong port
        assert link.receive(0.2) == []
        assert link.counters.drops["filtered"] == 1
        link.send(bytes(101))
        assert link.counters.drops["mtu"] == 1
        assert link.counters.tx_packets == 0
    finally:
        link.close()


def test_receive_times_out_empty() -> None:
    peer = ("127.0.0.1", 9)
    endpoint = DatagramEndpoint("t", ("127.0.0.1", 0), peer, same_host(peer))
    assert endpoint.receive(0.05) == []
    endpoint.close()


def test_port_in_use_is_one_line_error() -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", port))
        with pytest.raises(LinkError, match=rf"cannot bind UDP 127.0.0.1:{port}: already in use"):
            tunnel_ports(port, free_port())


def test_no_socket_can_join_a_udp_links_address() -> None:
    """The link's second socket, connected to the peer, shares its bound address; nobody else
    can, not even a socket that asks to share (a stranger sharing it would see the traffic)."""
    registry = LinkRegistry(get_plugin_manager())
    port_a, port_b = free_port(), free_port()
    url = f"udp:127.0.0.1:{port_b}?bind=127.0.0.1:{port_a}"
    link = registry.create_link(url)
    link.open()
    try:
        for option in (socket.SO_REUSEADDR, socket.SO_REUSEPORT):
            for host in ("127.0.0.1", "0.0.0.0"):
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
                    other.setsockopt(socket.SOL_SOCKET, option, 1)
                    with pytest.raises(OSError) as refused:
                        other.bind((host, port_a))
                    assert refused.value.errno == errno.EADDRINUSE
        second = registry.create_link(url)
        with pytest.raises(LinkError, match="already in use"):
            second.open()
    finally:
        link.close()


def test_a_peer_not_listening_yet_costs_nothing_but_its_packets() -> None:
    """The peer's host answers with ICMP port unreachable, which the socket connected to the
    peer reports on its next call: the link neither stops nor counts drops, and the peer gets
    what is sent once it listens."""
    registry = LinkRegistry(get_plugin_manager())
    port_a, port_b = free_port(), free_port()
    a = registry.create_link(f"udp:127.0.0.1:{port_b}?bind=127.0.0.1:{port_a}")
    b = registry.create_link(f"udp:127.0.0.1:{port_a}?bind=127.0.0.1:{port_b}")
    a.open()
    try:
        before = icmp_unreachables()
        for _ in range(3):
            a.send(b"nobody there")
            assert a.receive(0.05) == []  # the refusal is news of the send, not an error
        assert icmp_unreachables() - before >= 3
        b.open()
        a.send(b"now")
        assert b.receive(1.0) == [b"now"]
        assert a.counters.tx_packets == 4 and a.counters.drops == {}
    finally:
        a.close()
        b.close()


def test_ports_mirror_each_other() -> None:
    rx, tx = free_port(), free_port()
    tunnel = tunnel_ports(rx, tx)
    link = link_ports(rx, tx)
    try:
        tunnel.send(b"to the link")
        assert link.receive(1.0) == [b"to the link"]
        link.send(b"to the tunnel")
        assert tunnel.receive(1.0) == [b"to the tunnel"]
    finally:
        tunnel.close()
        link.close()
