"""linkbridge's link conformance suite, run against the tcp: link over loopback."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import ClassVar

from linkbridge.plugin import LinkConformance, free_port


class TestTcpConformance(LinkConformance):
    scheme = "tcp"
    bad_options: ClassVar[dict[str, str]] = {"listen": "maybe", "mtu": "10", "retry": "soon"}
    lab_traffic = False  # its lab pair listens on host A's address, inside the lab's namespace

    @contextlib.contextmanager
    def pair(self) -> Iterator[tuple[str, str]]:
        port = free_port(socket.SOCK_STREAM)
        yield f"tcp:127.0.0.1:{port}?listen=1", f"tcp:127.0.0.1:{port}?retry=50ms"

    @contextlib.contextmanager
    def unopenable(self) -> Iterator[str | None]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen(1)
            yield f"tcp:127.0.0.1:{holder.getsockname()[1]}?listen=1"
