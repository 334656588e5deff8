"""Read what exists in a namespace (devices, routes) to check that nothing was left behind."""

from __future__ import annotations

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
