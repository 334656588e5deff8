"""What an endpoint's descriptor is, for the data path's lean loop (linkbridge/lean.py).

An endpoint whose own class has `raw_port()` tells the data path how to move packets through its
descriptor directly, with the same counters and drop reasons as its send() and receive(). A
wrapper (pcap, fragmentation, `--via`) offers none, so its packets take the generic path.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass

from linkbridge.counters import Counters


@dataclass(frozen=True)
class DevicePort:
    """A non-blocking descriptor that yields one whole packet per read and takes one per write
    (a TUN device); `read_size` is the read buffer."""

    fd: int
    counters: Counters
    read_size: int


@dataclass(frozen=True)
class SocketPort:
    """A non-blocking UDP socket that sends every packet to `peer`.

    Datagrams from sources `accept` refuses are dropped as `filtered` (it must accept `peer`
    itself); with `gro` a read may hold a run of datagrams, with its segment size in the
    ancillary data; packets longer than `mtu` are not sent but dropped as `mtu`. `conn`, where
    there is one, is a second socket on the same address, connect()ed to `peer`: the kernel
    delivers the peer's datagrams there, and UDP GRO on it is whatever its reader last set.
    """

    sock: socket.socket
    peer: tuple[str, int]
    accept: Callable[[tuple[str, int]], bool]
    counters: Counters
    gro: bool
    mtu: int | None = None
    conn: socket.socket | None = None


RawPort = DevicePort | SocketPort


def raw_port(endpoint: object) -> RawPort | None:
    """`endpoint`'s descriptor when its own class offers one; attributes a wrapper merely
    delegates to its inner endpoint (PcapTap's __getattr__) do not count."""
    method = getattr(type(endpoint), "raw_port", None)
    port = method(endpoint) if callable(method) else None
    return port if isinstance(port, DevicePort | SocketPort) else None
