"""The built-in udp: link passes the plugin conformance suite of linkbridge.plugin.conformance."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import ClassVar

from linkbridge.plugin.conformance import LinkConformance, free_port


class TestUdpConformance(LinkConformance):
    scheme = "udp"
    bad_options: ClassVar[dict[str, str]] = {"mtu": "0", "bind": "nowhere"}
    lab_traffic = False  # its lab pair binds the lab port on each host's own address

    @contextlib.contextmanager
    def pair(self) -> Iterator[tuple[str, str]]:
        port_a, port_b = free_port(), free_port()
        yield (f"{self.scheme}:127.0.0.1:{port_b}?bind=127.0.0.1:{port_a}",
               f"{self.scheme}:127.0.0.1:{port_a}?bind=127.0.0.1:{port_b}")

    @contextlib.contextmanager
    def unopenable(self) -> Iterator[str | None]:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
            holder.bind(("127.0.0.1", 0))
            taken = holder.getsockname()[1]
            yield f"{self.scheme}:127.0.0.1:9?bind=127.0.0.1:{taken}"
