"""A UDP socket endpoint: bound locally, sending to one peer, accepting what a filter allows."""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import struct
from collections.abc import Callable, Sequence

from linkbridge.batch import BatchReader
from linkbridge.counters import Counters
from linkbridge.errors import LinkError
from linkbridge.rawport import SocketPort
from linkbridge.segments import gso_runs, split_run

log = logging.getLogger(__name__)
Address = tuple[str, int]
SOCKET_BUFFER = 4 * 1024 * 1024
MAX_DATAGRAM = 65535
SOL_UDP = 17
UDP_SEGMENT = 103  # send a run of equal-size datagrams in one call (Linux >= 4.18)
UDP_GRO = 104  # receive such runs coalesced, with the segment size (Linux >= 5.0)
GRO_CMSG_SPACE = socket.CMSG_SPACE(4)
GSO_UNUSABLE = {errno.EIO, errno.EINVAL, errno.ENOPROTOOPT, errno.EOPNOTSUPP}


def gro_segment(ancillary: list[tuple[int, int, bytes]]) -> int:
    """The segment size a coalesced (UDP GRO) read reports; 0 for a lone datagram."""
    segment = 0
    for level, kind, value in ancillary:
        if level == SOL_UDP and kind == UDP_GRO:
            (segment,) = struct.unpack("=i", value[:4])
    return segment


def send_drop_reason(exc: OSError) -> str:
    """The drop counted for a datagram the kernel refused with `exc`."""
    if isinstance(exc, BlockingIOError):
        return "queue_full"
    return "too_big" if exc.errno == errno.EMSGSIZE else "send_error"


def format_address(address: Address) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def same_host(peer: Address) -> Callable[[Address], bool]:
    """Accept datagrams from `peer`'s host only; for a loopback peer, from any loopback address."""
    host = ipaddress.ip_address(peer[0])
    if host.is_loopback:
        return lambda source: ipaddress.ip_address(source[0]).is_loopback
    return lambda source: source[0] == peer[0]


def exact_peer(peer: Address) -> Callable[[Address], bool]:
    """Accept datagrams from `peer` (host and port) only."""
    return lambda source: source[0] == peer[0] and source[1] == peer[1]


class DatagramEndpoint:
    """One UDP socket bound to `bind` that sends every packet to `peer`.

    Datagrams from sources the `accept` filter refuses are dropped and counted as `filtered`.
    Where the kernel offers it, send_many() hands runs of equal-size packets to the kernel in one
    call (UDP GSO) and reads take coalesced runs (UDP GRO) apart again: the datagrams on the wire
    and the packets returned are the same as with one system call per packet.
    """

    def __init__(
        self, name: str, bind: Address, peer: Address, accept: Callable[[Address], bool]
    ) -> None:
        self.name = name
        self.counters = Counters()
        self.bind_address = bind
        self.peer = peer
        self._accept = accept
        family = socket.AF_INET6 if ":" in bind[0] else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self._sock.bind(bind)
        except OSError as exc:
            self._sock.close()
            reason = "already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise LinkError(f"{name}: cannot bind UDP {format_address(bind)}: {reason}") from None
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            self._sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
        self._sock.setblocking(False)
        self._gso = True  # until a segmented send fails: then one datagram per call
        try:
            self._sock.setsockopt(SOL_UDP, UDP_GRO, 1)
            self._gro = True
        except OSError:
            self._gro = False
        self._reader = BatchReader(self._sock.fileno(),
                                   self._read_coalesced if self._gro else self._read_one)

    @property
    def local_address(self) -> Address:
        host, port = self._sock.getsockname()[:2]
        return host, port

    def _read_one(self, packets: list[bytes]) -> None:
        data, source = self._sock.recvfrom(MAX_DATAGRAM)
        if not self._accept(source[:2]):
            self.counters.drop("filtered")
            return
        self.counters.received(len(data))
        packets.append(data)

    def _read_coalesced(self, packets: list[bytes]) -> None:
        data, ancillary, _flags, source = self._sock.recvmsg(MAX_DATAGRAM, GRO_CMSG_SPACE)
        segment = gro_segment(ancillary)
        pieces = split_run(data, segment) if segment else [data]
        if not self._accept(source[:2]):
            self.counters.drop("filtered", len(pieces))
            return
        for piece in pieces:
            self.counters.received(len(piece))
        packets += pieces

    def fileno(self) -> int:
        """The socket's descriptor, for waiting on it (the data path polls it)."""
        return self._sock.fileno()

    def raw_port(self, mtu: int | None = None) -> SocketPort:
        """The socket for the data path's lean loop, which moves packets as receive()/send()
        would (`mtu`: the link's, whose send drops longer packets)."""
        return SocketPort(self._sock, self.peer, self._accept, self.counters, self._gro, mtu)

    def receive(self, timeout: float) -> list[bytes]:
        return self._reader.receive(timeout)

    def send(self, packet: bytes) -> None:
        try:
            self._sock.sendto(packet, self.peer)
        except OSError as exc:
            self.counters.drop(send_drop_reason(exc))
        else:
            self.counters.sent(len(packet))

    def send_many(self, packets: Sequence[bytes]) -> None:
        """Send `packets` in order, each run of equal-size ones in one system call when possible."""
        if not self._gso:
            for packet in packets:
                self.send(packet)
            return
        for size, run in gso_runs(packets):
            if len(run) == 1:
                self.send(run[0])
                continue
            try:
                self._sock.sendmsg([b"".join(run)],
                                   [(SOL_UDP, UDP_SEGMENT, struct.pack("=H", size))], 0, self.peer)
            except BlockingIOError:
                self.counters.drop("queue_full", len(run))
            except OSError as exc:
                if exc.errno in GSO_UNUSABLE:
                    # No GSO on this path (an old kernel, no checksum offload, a segment larger
                    # than the route's MTU): from now on one datagram per call.
                    log.debug("%s: UDP segmentation offload off: %s", self.name, exc.strerror)
                    self._gso = False
                for packet in run:  # sent, or dropped and counted by reason, one by one
                    self.send(packet)
            else:
                for packet in run:
                    self.counters.sent(len(packet))

    def close(self) -> None:
        self._sock.close()
