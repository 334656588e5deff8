"""What a running tunnel tells plugins and status readers about itself."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TunnelInfo:
    """A tunnel as set up: its device, MTU, local addresses, routed networks and link."""

    device: str
    mtu: int
    addresses: tuple[str, ...]
    routes: tuple[str, ...]
    link: str
