"""IPv6 through the userspace tunnel: v6 addresses and routes, ICMPv6 ping and TCP over `udp:`."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from pyroute2 import IPRoute
from pyroute2.netlink.rtnl.ifaddrmsg import IFA_F_NODAD, IFA_F_TENTATIVE

from linkbridge.errors import ConfigError
from linkbridge.lab import netns
from linkbridge.lab.probes import ping, tcp_transfer
from linkbridge.lab.processes import LinkbridgeProcess
from linkbridge.lab.run import TUN_NAME, lab_tunnels
from linkbridge.lab.topology import OVERLAY, OVERLAY6, TwoHosts
from linkbridge.plugin.registry import LinkRegistry
from linkbridge.tunnel.netconf import RTN_LOCAL
from linkbridge.tunnel.setup import TunnelSpec, parse_interface, parse_network
from tests.helpers.commands import tunnel_status, unanswered


def test_ipv6_ping_and_tcp_over_udp(lab: TwoHosts, registry: LinkRegistry) -> None:
    with lab_tunnels(lab, "udp", ipv6=True, registry=registry) as (side_a, side_b):
        # usable from the start: no duplicate address detection, and the local route in (the
        # kernel adds it in a work item that ran some ms after a tunnel was ready on a loaded
        # machine: the first ping to it was lost, 1 CI run in 6)
        for host, own in ((lab.a, OVERLAY6[0]), (lab.b, OVERLAY6[1])):
            assert address_flags(host, TUN_NAME) & (IFA_F_NODAD | IFA_F_TENTATIVE) == IFA_F_NODAD
            assert route_type(host, own) == RTN_LOCAL
        there = ping(lab.a, OVERLAY6[1], count=10, interval=0.01)
        assert there.received == 10, (f"unanswered {unanswered(there)}; "
                                      f"A {tunnel_status(side_a)}; B {tunnel_status(side_b)}")
        back = ping(lab.b, OVERLAY6[0], count=3, interval=0.01, size=1200)
        assert back.received == 3, back
        transfer = tcp_transfer(lab.b, OVERLAY6[1], lab.a, 2_000_000)
        assert transfer.received_bytes == 2_000_000
        assert transfer.intact
        v4 = ping(lab.a, OVERLAY[1], count=3, interval=0.01)  # both families at once
        assert v4.received == 3, v4
        routes = subprocess.run(["ip", "-n", lab.a, "-6", "route", "show", "dev", TUN_NAME],
                                capture_output=True, text=True, check=True).stdout
        assert f"{OVERLAY6[1]} " in routes
    assert side_a.proc is not None and side_a.proc.returncode == 0, side_a.output()
    assert side_b.proc is not None and side_b.proc.returncode == 0, side_b.output()


def test_ipv6_below_1280_is_refused_before_any_setup() -> None:
    with pytest.raises(ConfigError, match="at least 1280"):
        TunnelSpec(mtu=1000, addresses=(parse_interface("fd00:198:19::1/64"),))
    with pytest.raises(ConfigError, match="at least 1280"):
        TunnelSpec(mtu=1279, remotes=(parse_network("fd00:198:19::/64"),))
    TunnelSpec(mtu=1280, addresses=(parse_interface("fd00:198:19::1"),),
               remotes=(parse_network("fd00:198:19::2"), parse_network("198.19.0.0/24")))
    TunnelSpec(mtu=100, remotes=(parse_network("198.19.0.2"),))  # IPv4 only: no limit


def test_ipv6_mtu_error_is_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "linkbridge", "up", "--link", "udp:127.0.0.1:9", "--mtu", "576",
         "--remote", "fd00:198:19::2"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.startswith("linkbridge: error: IPv6 (fd00:198:19::2/128) needs a tunnel "
                                  "MTU of at least 1280, not 576")
    assert len(done.stderr.strip().splitlines()) == 1


def address_flags(ns_name: str, ifname: str) -> int:
    """The flags of the one IPv6 address of global scope on `ifname`."""
    with netns.inside(ns_name), IPRoute() as ipr:
        [address] = [msg for msg in ipr.get_addr(index=ipr.link_lookup(ifname=ifname)[0],
                                                 family=socket.AF_INET6) if msg["scope"] == 0]
        flags: int = address.get_attr("IFA_FLAGS") or address["flags"]
    return flags


def route_type(ns_name: str, address: str) -> int:
    """The type of the route the kernel takes to `address` (RTN_LOCAL: one of its own)."""
    with netns.inside(ns_name), IPRoute() as ipr:
        [route] = ipr.route("get", dst=address)
        kind: int = route["type"]
    return kind


def add_underlay6(ns_name: str, ifname: str, address: str) -> None:
    """An IPv6 address on a lab veth, usable at once (no duplicate address detection)."""
    with netns.inside(ns_name), IPRoute() as ipr:
        index = ipr.link_lookup(ifname=ifname)[0]
        ipr.addr("add", index=index, address=address, prefixlen=64, flags=IFA_F_NODAD)


def test_all_ipv6_path_over_an_ipv6_underlay(lab: TwoHosts) -> None:
    underlay = ("fd00:198:18::1", "fd00:198:18::2")
    add_underlay6(lab.a, lab.veth_a, underlay[0])
    add_underlay6(lab.b, lab.veth_b, underlay[1])
    sides = [
        LinkbridgeProcess(ns, ["up", "--link", f"udp:[{peer}]:47000", "--mtu", "1400",
                               "--address", f"{local}/64", "--remote", remote], label)
        for ns, peer, local, remote, label in (
            (lab.a, underlay[1], OVERLAY6[0], OVERLAY6[1], "tunnel A"),
            (lab.b, underlay[0], OVERLAY6[1], OVERLAY6[0], "tunnel B"),
        )
    ]
    with sides[0], sides[1]:
        assert ping(lab.a, OVERLAY6[1], count=5, interval=0.01).received == 5
        transfer = tcp_transfer(lab.b, OVERLAY6[1], lab.a, 1_000_000)
        assert transfer.intact and transfer.received_bytes == 1_000_000
