"""The `tcp:` link: packets over one TCP connection, each framed by a 2-byte length.

One side listens (`tcp:ADDR:PORT?listen=1`), the other connects (`tcp:ADDR:PORT`). The link is
a StreamLink: `open_stream()` (accept a peer, or connect to it) is all this plugin does itself;
framing, the write deadline and reconnecting with backoff whenever the connection is lost are
StreamLink's. Packets sent while no connection is up are held (up to HOLD of them) and go out
as soon as it is, so the first packets of a tunnel are not lost while the two sides meet.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator, Mapping
from typing import Any

from linkbridge.plugin import (
    ConfigError,
    Link,
    LinkError,
    LinkUrl,
    Option,
    Stream,
    StreamLink,
    boolean,
    duration,
    hookimpl,
    host_port,
    integer,
)
from linkbridge.plugin.codecs import length_prefix
from linkbridge.plugin.lab import LabSides

LAB_PORT = 47100
CONNECT_TIMEOUT = 1.0
HOLD = 64  # packets kept while the connection is not up yet (or again)
ACCEPT_EVERY = 0.05  # seconds between looks for a peer at the listening side


class TcpLink(StreamLink):
    """Carries packets over a TCP connection (length-prefixed, StreamLink's default framing)."""

    scheme = "tcp"
    summary = "packets over one TCP connection, each framed by a 2-byte length"
    target_help = "HOST:PORT to connect to (with listen=1: to listen on)"
    options = (
        Option("listen", boolean, False, "listen on HOST:PORT instead of connecting to it"),
        Option("retry", duration, 0.5, "longest pause between connection attempts, e.g. 200ms"),
        Option("mtu", integer(68, length_prefix.MAX_PACKET), None,
               "largest packet carried (default: no limit)"),
    )
    wait_for_peer = True  # the peer may come later: try again with backoff, as after a loss
    hold = HOLD
    stream_kind = "connection"

    def __init__(self, target: str, options: Mapping[str, Any]) -> None:
        super().__init__(target, options)
        try:
            self.address = host_port(target)
        except ValueError as exc:
            raise ConfigError(f"link tcp:{target}: bad target: {exc}") from None
        self.family = socket.AF_INET6 if ":" in self.address[0] else socket.AF_INET
        self.listener: socket.socket | None = None
        self.open_on_send = self.config["listen"]  # accept a waiting peer when sending to it
        retry = ACCEPT_EVERY if self.config["listen"] else max(self.config["retry"], 0.001)
        self.first_retry, self.max_retry = min(self.first_retry, retry), retry

    def open(self) -> None:
        if self.config["listen"] and self.listener is None:
            listener = socket.socket(self.family, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                listener.bind(self.address)
                listener.listen(1)
            except OSError as exc:
                listener.close()
                raise LinkError(f"{self.name}: cannot listen: {exc.strerror}") from None
            listener.setblocking(False)
            self.listener = listener
        super().open()

    def open_stream(self) -> Stream:
        """Accept the peer (the listening side), or connect to it."""
        if self.listener is not None:
            try:
                conn = self.listener.accept()[0]
            except BlockingIOError:
                raise ConnectionError("no peer has connected yet") from None
        else:
            conn = socket.create_connection(self.address, timeout=CONNECT_TIMEOUT)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return Stream(conn.detach())

    def close(self) -> None:
        super().close()
        if self.listener is not None:
            self.listener.close()
            self.listener = None

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
