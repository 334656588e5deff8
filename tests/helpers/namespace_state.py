"""Read a namespace's state: what exists (devices, routes, to check that nothing was left
behind), what its ICMP and UDP counters say and what its UDP sockets hold."""

from __future__ import annotations

import contextlib
from pathlib import Path

from pyroute2 import IPRoute

from linkbridge.lab import netns


def devices(ns_name: str) -> set[str]:
    with netns.inside(ns_name), IPRoute() as ipr:
        return {link.get("IFLA_IFNAME") for link in ipr.get_links()}


def routed(ns_name: str) -> set[str]:
    """Destinations (`addr/len`) of the main table's routes in a namespace."""
    with netns.inside(ns_name), IPRoute() as ipr:
        found = set()
        for family in (2, 10):
            for route in ipr.get_routes(family=family, table=254):
                dst = route.get("RTA_DST")
                if dst is not None:
                    found.add(f"{dst}/{route['dst_len']}")
        return found


def snmp_counters(ns_name: str | None = None) -> dict[str, dict[str, int]]:
    """The kernel's SNMP counters (/proc/net/snmp) by protocol ("Ip", "Icmp", "Tcp", "Udp"...)
    and name, in namespace `ns_name` (None: the current thread's)."""
    with netns.inside(ns_name) if ns_name else contextlib.nullcontext():
        lines = [line.split() for line in
                 Path("/proc/thread-self/net/snmp").read_text().splitlines()]
    return {names[0].rstrip(":"): dict(zip(names[1:], map(int, values[1:]), strict=True))
            for names, values in zip(lines[::2], lines[1::2], strict=True)}


def udp_queued(ns_name: str, port: int) -> int:
    """Bytes waiting in the receive queues of namespace `ns_name`'s UDP sockets bound to local
    `port` (/proc/net/udp's rx_queue, in the kernel's accounting of buffer space)."""
    with netns.inside(ns_name):
        rows = Path("/proc/thread-self/net/udp").read_text().splitlines()[1:]
    return sum(int(fields[4].split(":")[1], 16) for fields in map(str.split, rows)
               if int(fields[1].split(":")[1], 16) == port)


def icmp_unreachables() -> int:
    """Destination unreachable messages the current thread's network namespace has received
    (on loopback it sends them to itself)."""
    return snmp_counters()["Icmp"]["InDestUnreachs"]

