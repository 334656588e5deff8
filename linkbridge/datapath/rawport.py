"""What an endpoint's descriptor is, for the data path's lean loop (linkbridge/datapath/lean.py).

An endpoint that implements endpoint.RawPortProvider returns one of these from `raw_port()`. A
wrapper (pcap, fragmentation, `--via`) offers none, so its packets take the generic path. A
layer that makes each packet one frame (encryption) over a SocketPort offers a SealedPort
(endpoint.SealedPortProvider), so that the loop moves its frames and calls it per packet.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
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
        else:  # sent() written out: this runs for every packet written into the device
            counters = self.counters
            counters.tx_packets += 1
            counters.tx_bytes += len(packet)


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



@dataclass(frozen=True)
class SealedPort:
    """A SocketPort under a layer that seals each packet into one frame and opens each frame
    into at most one packet (the encrypt layer over udp:). The lean loop moves the frames
    through `port` as it moves plain packets, and calls per packet `seal` (the frame; None
    when the layer sent or queued the packet itself, e.g. while no session is up) and `open`
    (the packet; None for a drop, a keepalive or a handshake message, which the layer dealt
    with), and `open_many` for the frames of one coalesced read. Both count the layer's own
    figures; malformed packets out of `open` are counted in `counters`, the layer's, as the
    generic path counts them."""

    port: SocketPort
    counters: Counters
    seal: Callable[[bytes], bytes | None]
    open: Callable[[bytes], bytes | None]
    open_many: Callable[[Sequence[bytes]], list[bytes]]
