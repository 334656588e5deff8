"""The `tcp:` link: packets over one TCP connection, each framed by a 2-byte length.

One side listens (`tcp:ADDR:PORT?listen=1`), the other connects (`tcp:ADDR:PORT`) and
reconnects whenever the connection is lost. A packet sent while no connection is up is a
counted drop (`not_connected`), as on any link that is down.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from linkbridge.plugin import (
    ConfigError,
    Link,
    LinkError,
    LinkUrl,
    Option,
    boolean,
    drops,
    duration,
    hookimpl,
    host_port,
    integer,
)
from linkbridge.plugin.codecs import length_prefix
from linkbridge.plugin.lab import LabSides

log = logging.getLogger(__name__)

LAB_PORT = 47100
SEND_TIMEOUT = 2.0  # a peer that takes no data for this long is treated as gone
RECV_SIZE = 256 * 1024


class TcpLink(Link):
    """Carries packets over a TCP connection; the listening side takes the newest connection."""

    scheme = "tcp"
    summary = "packets over one TCP connection, each framed by a 2-byte length"
    target_help = "HOST:PORT to connect to (with listen=1: to listen on)"
    options = (
        Option("listen", boolean, False, "listen on HOST:PORT instead of connecting to it"),
        Option("retry", duration, 0.5, "pause between connection attempts, e.g. 200ms"),
        Option("mtu", integer(68, length_prefix.MAX_PACKET), None,
               "largest packet carried (default: no limit)"),
    )

    def __init__(self, target: str, options: Mapping[str, Any]) -> None:
        super().__init__(target, options)
        try:
            self.address = host_port(target)
        except ValueError as exc:
            raise ConfigError(f"link tcp:{target}: bad target: {exc}") from None
        self.family = socket.AF_INET6 if ":" in self.address[0] else socket.AF_INET
        self._lock = threading.Lock()  # guards _conn between the send and receive threads
        self._conn: socket.socket | None = None
        self._listener: socket.socket | None = None
        self._decoder = length_prefix.LengthDecoder()
        self._next_attempt = 0.0
        self._open = False

    @property
    def mtu(self) -> int | None:
        value: int | None = self.config["mtu"]
        return value

    def open(self) -> None:
        if self.config["listen"]:
            listener = socket.socket(self.family, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                listener.bind(self.address)
                listener.listen(1)
            except OSError as exc:
                listener.close()
                raise LinkError(f"{self.name}: cannot listen: {exc.strerror}") from None
            listener.setblocking(False)
            self._listener = listener
        self._open = True
        self._connect_or_accept()

    # --- connection management (receive thread; send only accepts a pending peer) -----------

    def _use(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(SEND_TIMEOUT)
        with self._lock:
            old, self._conn = self._conn, conn
            self._decoder = length_prefix.LengthDecoder()
        if old is not None:
            old.close()
        log.info("%s: connected to %s", self.name, conn.getpeername()[:2])

    def _lose(self, conn: socket.socket, why: str) -> None:
        with self._lock:
            if self._conn is conn:
                self._conn = None
        conn.close()
        self._next_attempt = time.monotonic() + self.config["retry"]
        log.info("%s: connection lost (%s)", self.name, why)

    def _connect_or_accept(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(BlockingIOError, InterruptedError):
                self._use(self._listener.accept()[0])
            return
        if self._conn is not None or time.monotonic() < self._next_attempt:
            return
        conn = socket.socket(self.family, socket.SOCK_STREAM)
        conn.settimeout(1.0)
        try:
            conn.connect(self.address)
        except OSError as exc:
            conn.close()
            self._next_attempt = time.monotonic() + self.config["retry"]
            log.debug("%s: connect failed: %s", self.name, exc)
            return
        self._use(conn)

    # --- the Link interface --------------------------------------------------------------

    def send(self, packet: bytes) -> None:
        if len(packet) > (self.mtu or length_prefix.MAX_PACKET):
            self.counters.drop(drops.MTU)
            return
        if self._conn is None and self._listener is not None:
            self._connect_or_accept()
        with self._lock:
            conn = self._conn
            if conn is None:
                self.counters.drop(drops.NOT_CONNECTED)
                return
            try:
                conn.sendall(length_prefix.encode(packet))
            except OSError:
                # part of a frame may be on the wire: only a new connection is in step again
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)  # the receive thread sees EOF and resets
                self.counters.drop(drops.SEND_ERROR)
                return
        self.counters.sent(len(packet))

    def receive(self, timeout: float) -> list[bytes]:
        if not self._open:
            raise LinkError(f"{self.name}: link is not open")
        deadline = time.monotonic() + timeout
        while True:
            self._connect_or_accept()
            conn, listener = self._conn, self._listener
            remaining = max(0.0, deadline - time.monotonic())
            watched = [s for s in (conn, listener) if s is not None]
            if conn is None and listener is None:
                time.sleep(min(remaining, max(0.0, self._next_attempt - time.monotonic())))
            elif select.select(watched, [], [], remaining)[0] and conn is not None:
                packets = self._read(conn)
                if packets:
                    return packets
            if time.monotonic() >= deadline:
                return []

    def _read(self, conn: socket.socket) -> list[bytes]:
        try:
            data = conn.recv(RECV_SIZE, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return []
        except OSError as exc:
            self._lose(conn, exc.strerror or "error")
            return []
        if not data:
            self._lose(conn, "closed by peer")
            return []
        try:
            packets = self._decoder.feed(data)
        except length_prefix.FramingError as exc:
            self.counters.drop(drops.MALFORMED_FRAME)
            self._lose(conn, str(exc))
            return []
        for packet in packets:
            self.counters.received(len(packet))
        return packets

    def close(self) -> None:
        self._open = False
        with self._lock:
            conn, self._conn = self._conn, None
        for sock in (conn, self._listener):
            if sock is not None:
                sock.close()
        self._listener = None

    @classmethod
    @contextlib.contextmanager
    def lab_pair(cls, url: LinkUrl, sides: LabSides) -> Iterator[tuple[LinkUrl, LinkUrl]]:
        if url.target or "listen" in url.options:
            raise ConfigError("the lab chooses the tcp: addresses itself; give options only "
                              "(e.g. tcp:?mtu=1400)")
        target = f"{sides.a_address}:{LAB_PORT}"
        yield (LinkUrl("tcp", target, {**url.options, "listen": "1"}),
               LinkUrl("tcp", target, {"retry": "100ms", **url.options}))


@hookimpl
def linkbridge_register_links() -> list[type[Link]]:
    return [TcpLink]
