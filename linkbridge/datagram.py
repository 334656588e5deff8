"""A UDP socket endpoint: bound locally, sending to one peer, accepting what a filter allows."""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Callable

from linkbridge.batch import BatchReader
from linkbridge.counters import Counters
from linkbridge.errors import LinkError

Address = tuple[str, int]
SOCKET_BUFFER = 4 * 1024 * 1024
MAX_DATAGRAM = 65535


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
        self._reader = BatchReader(self._sock.fileno(), self._read_one)

    @property
    def local_address(self) -> Address:
        host, port = self._sock.getsockname()[:2]
        return host, port

    def _read_one(self) -> bytes | None:
        data, source = self._sock.recvfrom(MAX_DATAGRAM)
        if not self._accept(source[:2]):
            self.counters.drop("filtered")
            return None
        self.counters.received(len(data))
        return data

    def receive(self, timeout: float) -> list[bytes]:
        return self._reader.receive(timeout)

    def send(self, packet: bytes) -> None:
        try:
            self._sock.sendto(packet, self.peer)
        except BlockingIOError:
            self.counters.drop("queue_full")
        except OSError as exc:
            reason = "too_big" if exc.errno == errno.EMSGSIZE else "send_error"
            self.counters.drop(reason)
        else:
            self.counters.sent(len(packet))

    def close(self) -> None:
        self._sock.close()
