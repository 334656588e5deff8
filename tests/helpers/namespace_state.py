"""Read a namespace's state: what exists (devices, routes, to check that nothing was left
behind) and what its ICMP counters say."""

from __future__ import annotations

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


def icmp_unreachables() -> int:
    """Destination unreachable messages the current thread's network namespace has received
    (on loopback it sends them to itself)."""
    lines = [line.split() for line in Path("/proc/thread-self/net/snmp").read_text().splitlines()
             if line.startswith("Icmp:")]
    return int(dict(zip(lines[0], lines[1], strict=True))["InDestUnreachs"])

