"""A UDP socket endpoint: bound locally, sending to one peer, accepting what a filter allows."""

from __future__ import annotations

import errno
import ipaddress
import logging
import select
import socket
import struct
from collections.abc import Callable, Sequence
from typing import NamedTuple

from linkbridge.datapath.batch import READ_SIZE, BatchReader, Item
from linkbridge.datapath.counters import Counters
from linkbridge.datapath.rawport import SocketPort
from linkbridge.errors import LinkError
from linkbridge.wire.drops import FILTERED, QUEUE_FULL, SEND_ERROR, TOO_BIG
from linkbridge.wire.segments import gso_runs, split_run

log = logging.getLogger(__name__)
Address = tuple[str, int]
SOCKET_BUFFER = 4 * 1024 * 1024
SOL_UDP = 17
UDP_SEGMENT = 103  # send a run of equal-size datagrams in one call (Linux >= 4.18)
UDP_GRO = 104  # receive such runs coalesced, with the segment size (Linux >= 5.0)
GRO_CMSG_SPACE = socket.CMSG_SPACE(4)
GSO_UNUSABLE = {errno.EIO, errno.EINVAL, errno.ENOPROTOOPT, errno.EOPNOTSUPP}
# What a connected socket's next call reports after an ICMP error about an earlier datagram
# (port unreachable, filtered, fragmentation needed...): news from the path, not a failure.
PATH_ERRORS = frozenset({errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH,
                         errno.EHOSTDOWN, errno.ENONET, errno.ENOPROTOOPT, errno.EMSGSIZE,
                         errno.EOPNOTSUPP, errno.EPROTO, errno.EACCES})


def gro_segment(ancillary: list[tuple[int, int, bytes]]) -> int:
    """The datagram size of a read UDP GRO coalesced (its ancillary data gives it), else 0."""
    for level, kind, value in ancillary:
        if level == SOL_UDP and kind == UDP_GRO:
            segment: int = struct.unpack("=i", value[:4])[0]
            return segment
    return 0


def coalesced(data: bytes, ancillary: list[tuple[int, int, bytes]]) -> list[bytes]:
    """The datagrams of one read: several when UDP GRO coalesced a run, else the one read."""
    return split_run(data, gro_segment(ancillary))


Run = tuple[bytes, int]  # one read: datagrams of a size back to back (the last may be shorter)
RUN_BATCH = 8  # reads per receive_runs(): a read may hold 64 KB, a batch at most half a MB


class Datagram(NamedTuple):
    """What one read of a socket returned: a datagram, or a run of them coalesced by UDP GRO."""

    data: bytes
    ancillary: list[tuple[int, int, bytes]]
    source: Address


def read_datagram(sock: socket.socket) -> Datagram | None:
    """One read of `sock`; None when nothing is queued or the call only reported an ICMP error
    about an earlier datagram (PATH_ERRORS)."""
    try:
        data, ancillary, _flags, source = sock.recvmsg(READ_SIZE, GRO_CMSG_SPACE)
    except BlockingIOError:
        return None
    except OSError as exc:
        if exc.errno in PATH_ERRORS:
            return None
        raise
    return Datagram(data, ancillary, source[:2])


def send_drop_reason(exc: OSError) -> str:
    """The drop counted for a datagram the kernel refused with `exc`."""
    if isinstance(exc, BlockingIOError):
        return QUEUE_FULL
    return TOO_BIG if exc.errno == errno.EMSGSIZE else SEND_ERROR


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
    Without a filter only `peer` is accepted, and a second socket on the same address,
    connect()ed to `peer`, takes the peer's datagrams: the kernel delivers them there (a
    connected socket is the closer match), so they are read without a source address to look
    at, while strangers still reach the bound socket and are counted. Where the kernel offers
    it, send_many() hands runs of equal-size packets to the kernel in one call (UDP GSO) and
    reads take coalesced runs (UDP GRO) apart again: the datagrams on the wire and the packets
    returned are the same as with one system call per packet.
    """

    def __init__(self, name: str, bind: Address, peer: Address,
                 accept: Callable[[Address], bool] | None = None) -> None:
        self.name = name
        self.counters = Counters()
        self.bind_address = bind
        self.peer = peer
        self._accept = accept or exact_peer(peer)
        self._family = socket.AF_INET6 if ":" in bind[0] else socket.AF_INET
        self._sock = socket.socket(self._family, socket.SOCK_DGRAM)
        try:
            self._sock.bind(bind)
        except OSError as exc:
            self._sock.close()
            reason = "already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise LinkError(f"{name}: cannot bind UDP {format_address(bind)}: {reason}") from None
        self._conn = self._peer_socket() if accept is None else None
        self._closed = False
        self._gso = True  # until a segmented send fails: then one datagram per call
        self._gro = True
        for sock in self._sockets:
            for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
            sock.setblocking(False)
            try:
                sock.setsockopt(SOL_UDP, UDP_GRO, 1)
            except OSError:
                self._gro = False
        self._ready = select.epoll() if self._conn is not None else None
        if self._ready is not None:
            for sock in self._sockets:
                self._ready.register(sock.fileno(), select.EPOLLIN)
        self._reader = BatchReader(self.fileno(), self._read)
        self._run_reader = BatchReader(self.fileno(), self._read_run, RUN_BATCH)
        self._from_reader = BatchReader(self.fileno(), self._read_from)

    @property
    def _sockets(self) -> list[socket.socket]:
        return [self._sock] if self._conn is None else [self._sock, self._conn]

    def _peer_socket(self) -> socket.socket | None:
        """A socket on the bound address connect()ed to the peer; None where the kernel
        refuses one. The bound socket allows address sharing only while the second binds, so
        no other socket can join them later."""
        conn = socket.socket(self._family, socket.SOCK_DGRAM)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            conn.bind(self._sock.getsockname())
            conn.connect(self.peer)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
        except OSError as exc:
            log.debug("%s: no socket connected to the peer: %s", self.name, exc.strerror)
            conn.close()
            return None
        finally:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
        return conn

    @property
    def local_address(self) -> Address:
        host, port = self._sock.getsockname()[:2]
        return host, port

    def _read(self, packets: list[bytes]) -> None:
        """Append what one read yields, from the peer's socket first; BlockingIOError when
        both are empty."""
        run = self._read_conn()
        if run is None:
            packets += self._read_bound()[1]
        elif run[1]:
            packets += split_run(*run)
        else:  # one datagram (no call more per packet than the read itself)
            packets.append(run[0])

    def _read_run(self, runs: list[Run]) -> None:
        """Append one read as it came, (data, datagram size; 0 for a single datagram), as
        _read() reads it."""
        run = self._read_conn()
        if run is not None:
            runs.append(run)
            return
        data, ancillary, _flags, source = self._sock.recvmsg(READ_SIZE, GRO_CMSG_SPACE)
        if self._accept_read(source, data, ancillary):
            runs.append((data, gro_segment(ancillary)))

    def _read_conn(self) -> Run | None:
        """One read of the socket connected to the peer, counted as received, as it came;
        None when there is no such socket or it holds nothing."""
        if self._conn is None or (read := read_datagram(self._conn)) is None:
            return None
        segment = gro_segment(read.ancillary) if read.ancillary else 0
        count = -(-len(read.data) // segment) if segment else 1
        self.counters.coalesced_read(count)
        self.counters.rx_packets += count  # received() for each, in one step
        self.counters.rx_bytes += len(read.data)
        return read.data, segment

    def _accept_read(self, source: Address, data: bytes,
                     ancillary: list[tuple[int, int, bytes]]) -> list[bytes]:
        """The datagrams of a read of the bound socket from `source` that the filter accepts
        (none: counted as filtered), counted as received."""
        pieces = coalesced(data, ancillary)
        self.counters.coalesced_read(len(pieces))
        if not self._accept(source[:2]):
            self.counters.drop(FILTERED, len(pieces))
            return []
        self.counters.rx_packets += len(pieces)
        self.counters.rx_bytes += len(data)
        return pieces

    def _read_bound(self) -> tuple[Address, list[bytes]]:
        """One read of the bound socket: its source and the datagrams the filter accepts."""
        data, ancillary, _flags, source = self._sock.recvmsg(READ_SIZE, GRO_CMSG_SPACE)
        return source[:2], self._accept_read(source, data, ancillary)

    def _read_from(self, datagrams: list[tuple[Address, bytes]]) -> None:
        source, pieces = self._read_bound()
        datagrams += [(source, piece) for piece in pieces]

    def fileno(self) -> int:
        """A descriptor that is readable while a datagram is queued (the data path polls it):
        the socket's, or with a socket for the peer an epoll instance watching both."""
        return self._sock.fileno() if self._ready is None else self._ready.fileno()

    def raw_port(self, mtu: int | None = None) -> SocketPort:
        """The sockets for the data path's lean loop, which moves packets as receive()/send()
        would (`mtu`: the link's, whose send drops longer packets)."""
        return SocketPort(self._sock, self.peer, self._accept, self.counters, self._gro, mtu,
                          self._conn)

    def receive(self, timeout: float) -> list[bytes]:
        return self._receive(self._reader, timeout)

    def receive_runs(self, timeout: float) -> list[Run]:
        """What receive() returns, each read as it came: a run UDP GRO coalesced stays whole
        (the offload layer takes one super-packet's chunks so, endpoint.RunSource)."""
        return self._receive(self._run_reader, timeout)

    def receive_from(self, timeout: float) -> list[tuple[Address, bytes]]:
        """What receive() returns, each datagram with its source (an endpoint with a filter
        of its own, `accept`, so that no socket connected to the peer takes any)."""
        return self._receive(self._from_reader, timeout)

    def _receive(self, reader: BatchReader[Item], timeout: float) -> list[Item]:
        try:
            return reader.receive(timeout)
        except OSError:
            if self._closed:  # close() ran while this receive() waited
                raise LinkError(f"{self.name}: link is closed") from None
            raise

    def send(self, packet: bytes, address: Address | None = None) -> None:
        """Send `packet` to `address` (None: to the peer)."""
        try:
            self._sock.sendto(packet, address or self.peer)
        except OSError as exc:
            self.counters.drop(send_drop_reason(exc))
        else:
            self.counters.sent(len(packet))

    def send_many(self, packets: Sequence[bytes]) -> None:
        """Send `packets` in order, each run of equal-size ones in one system call when possible."""
        for size, run in gso_runs(packets) if self._gso else ((0, [packet]) for packet in packets):
            if len(run) == 1 or not self.send_segments(run, size, len(run),
                                                       sum(map(len, run))):
                for packet in run:  # sent, or dropped and counted by reason, one by one
                    self.send(packet)

    def send_segments(self, pieces: Sequence[bytes | memoryview], size: int, count: int,
                      length: int) -> bool:
        """Send the `count` datagrams of `size` bytes (the last may be shorter; `length` bytes
        in all) that `pieces` hold back to back, in one system call (UDP GSO) that gathers
        them: nothing is joined here. False, with nothing sent or counted, when that failed (no
        GSO on this path, or an error one datagram at a time would count by its reason)."""
        if not self._gso:
            return False
        try:
            self._sock.sendmsg(pieces, [(SOL_UDP, UDP_SEGMENT, struct.pack("=H", size))], 0,
                               self.peer)
        except BlockingIOError:
            self.counters.drop(QUEUE_FULL, count)
        except OSError as exc:
            if exc.errno in GSO_UNUSABLE:
                # No GSO on this path (an old kernel, no checksum offload, a segment larger
                # than the route's MTU): from now on one datagram per call.
                log.debug("%s: UDP segmentation offload off: %s", self.name, exc.strerror)
                self._gso = False
            return False
        else:
            self.counters.segmented_send(count)
            self.counters.tx_packets += count  # sent() for each, in one step
            self.counters.tx_bytes += length
        return True

    def close(self) -> None:
        self._closed = True
        if self._ready is not None:
            self._ready.close()
        for sock in self._sockets:
            sock.close()
