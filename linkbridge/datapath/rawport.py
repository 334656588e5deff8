"""What an endpoint's descriptor is, for the data path's lean loop (linkbridge/datapath/lean.py).

An endpoint that implements endpoint.RawPortProvider returns one of these from `raw_port()`. A
wrapper (pcap, fragmentation, `--via`) offers none, so its packets take the generic path.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

from linkbridge.datapath.counters import Counters
from linkbridge.wire.drops import QUEUE_FULL, TUN_WRITE_ERROR


@dataclass(frozen=True)
class DevicePort:
    """A non-blocking descriptor that yields one whole packet per read and takes one per write
    (a TUN device); `read_size` is the read buffer."""

    fd: int
    counters: Counters
    read_size: int

    def write(self, packet: bytes, header: bytes = b"") -> None:
        """Write `packet` into the device, behind `header` when given (a virtio_net_hdr, in
        the same system call): counted as sent, or as a drop (`queue_full` when the device has
        no room, `tun_write_error` when it refuses the packet)."""
        try:
            if header:
                os.writev(self.fd, (header, packet))
            else:
                os.write(self.fd, packet)
        except BlockingIOError:
            self.counters.drop(QUEUE_FULL)
        except OSError:
            self.counters.drop(TUN_WRITE_ERROR)
        else:
            self.counters.sent(len(packet))


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

