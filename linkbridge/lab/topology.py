"""Lab hosts in network namespaces, always torn down: two joined by a veth pair, or several
on one switch (a bridge in a namespace of its own) for multipoint tunnels."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from linkbridge.lab import netns
from linkbridge.lab.uart import cable_paths
from linkbridge.plugin.lab import LabSides

UNDERLAY_PREFIX = 30
UNDERLAY = ("198.18.0.1", "198.18.0.2")  # veth addresses of host A and host B
OVERLAY = ("198.19.0.1", "198.19.0.2")  # tunnel addresses of host A and host B
OVERLAY6 = ("fd00:198:19::1", "fd00:198:19::2")  # their IPv6 (ULA) tunnel addresses, `--ipv6`
OVERLAY6_PREFIX = 64


@dataclass(frozen=True)
class TwoHosts:
    """Names of the namespaces and veth ends of a running two-host lab."""

    a: str
    b: str
    veth_a: str
    veth_b: str

    @property
    def sides(self) -> LabSides:
        return LabSides(self.a, self.b, UNDERLAY[0], UNDERLAY[1], cable_paths)


def unique_tag() -> str:
    """A short tag that keeps concurrent labs (and test runs) apart."""
    return f"{os.getpid() % 100000}{os.urandom(2).hex()}"


@contextlib.contextmanager
def two_hosts(tag: str | None = None) -> Iterator[TwoHosts]:
    """Create hosts A and B joined by veth (198.18.0.1/30 <-> 198.18.0.2/30); remove on exit."""
    tag = tag or unique_tag()
    hosts = TwoHosts(a=f"lbA-{tag}", b=f"lbB-{tag}", veth_a=f"lva{tag}"[:15],
                     veth_b=f"lvb{tag}"[:15])
    with contextlib.ExitStack() as stack:
        for name in (hosts.a, hosts.b):
            netns.create(name)
            stack.callback(netns.remove, name)
        with IPRoute() as ipr:
            ipr.link("add", ifname=hosts.veth_a, kind="veth",
                     peer={"ifname": hosts.veth_b, "net_ns_fd": hosts.b})
            stack.callback(_delete_link, hosts.a, hosts.veth_a)
            index = ipr.link_lookup(ifname=hosts.veth_a)[0]
            ipr.link("set", index=index, net_ns_fd=hosts.a)
        for name, veth, address in ((hosts.a, hosts.veth_a, UNDERLAY[0]),
                                    (hosts.b, hosts.veth_b, UNDERLAY[1])):
            with netns.inside(name), IPRoute() as ns:
                ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
                index = ns.link_lookup(ifname=veth)[0]
                ns.addr("add", index=index, address=address, prefixlen=UNDERLAY_PREFIX)
                ns.link("set", index=index, state="up")
        yield hosts


STAR_NETWORK = "198.18.1"  # host N's underlay address on the switch: 198.18.1.N/24
STAR_PREFIX = 24


@dataclass(frozen=True)
class Star:
    """Names of the namespaces of a running switched lab: `hosts[n]` has the veth `veth` with
    the underlay address `address(n)`; `switch` holds the bridge. With several networks (a
    bridge each), host n's veth on network k is `veth_on(k)`, its address `address_on(k, n)`
    (198.18.k+1.n+1: network 0 is the one above)."""

    hosts: tuple[str, ...]
    switch: str
    veth: str = "lbs0"

    @staticmethod
    def address(index: int) -> str:
        return f"{STAR_NETWORK}.{index + 1}"

    @staticmethod
    def address_on(network: int, index: int) -> str:
        return f"198.18.{network + 1}.{index + 1}"

    def veth_on(self, network: int) -> str:
        return self.veth if network == 0 else f"lbs{network}"


@contextlib.contextmanager
def star_hosts(count: int, tag: str | None = None, networks: int = 1) -> Iterator[Star]:
    """Create `count` hosts, each joined by veth to one bridge in a switch namespace
    (198.18.1.1/24, .2, ...), and to one more bridge for each further network (198.18.2.1/24,
    ...); remove them all on exit, whatever happened."""
    tag = tag or unique_tag()
    star = Star(tuple(f"lbS{index}-{tag}" for index in range(count)), f"lbSw-{tag}")
    with contextlib.ExitStack() as stack:
        for name in (star.switch, *star.hosts):
            netns.create(name)
            stack.callback(netns.remove, name)
        for host in star.hosts:
            with netns.inside(host), IPRoute() as ns:
                ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
        for network in range(networks):
            _switched(star, network)
        yield star


def _switched(star: Star, network: int) -> None:
    """Bridge `network` in the switch namespace, every host joined to it by a veth."""
    with netns.inside(star.switch), IPRoute() as switch:
        switch.link("add", ifname=f"br{network}", kind="bridge")
        bridge = switch.link_lookup(ifname=f"br{network}")[0]
        switch.link("set", index=bridge, state="up")
    for index, host in enumerate(star.hosts):
        port = f"lbp{index}" if network == 0 else f"lbp{network}-{index}"
        with netns.inside(star.switch), IPRoute() as switch:
            switch.link("add", ifname=port, kind="veth",
                        peer={"ifname": star.veth_on(network), "net_ns_fd": host})
            switch.link("set", index=switch.link_lookup(ifname=port)[0], master=bridge,
                        state="up")
        with netns.inside(host), IPRoute() as ns:
            veth = ns.link_lookup(ifname=star.veth_on(network))[0]
            ns.addr("add", index=veth, address=star.address_on(network, index),
                    prefixlen=STAR_PREFIX)
            ns.link("set", index=veth, state="up")


def _delete_link(ns_name: str, ifname: str) -> None:
    with contextlib.suppress(NetlinkError, OSError), netns.inside(ns_name), IPRoute() as ns:
        found = ns.link_lookup(ifname=ifname)
        if found:
            ns.link("del", index=found[0])


def link_stats(ns_name: str, ifname: str) -> dict[str, int]:
    """Kernel counters of an interface in a namespace (rx/tx packets and bytes, drops)."""
    with netns.inside(ns_name), IPRoute() as ns:
        found = ns.link_lookup(ifname=ifname)
        if not found:
            return {}
        stats = ns.get_links(found[0])[0].get("IFLA_STATS64")
        return {key: stats[key] for key in ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes",
                                            "rx_dropped", "tx_dropped")}


def device_mtu(ns_name: str, ifname: str) -> int | None:
    """The MTU of an interface in a namespace, None when it is gone."""
    with netns.inside(ns_name), IPRoute() as ns:
        found = ns.link_lookup(ifname=ifname)
        return int(ns.get_links(found[0])[0].get("IFLA_MTU")) if found else None


def set_sysctl(ns_name: str, key: str, value: str) -> None:
    """Set a network sysctl (`key` under /proc/sys, e.g. net/ipv4/tcp_timestamps) in a
    namespace: the lab's hosts' own, the machine's stay as they are."""
    with netns.inside(ns_name), open(f"/proc/sys/{key}", "w", encoding="ascii") as file:
        file.write(value)
