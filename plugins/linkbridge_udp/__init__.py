"""The `udp:` link: each packet is one UDP datagram to a remote host:port.

Registered through the `linkbridge` entry-point group like any third-party plugin.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from linkbridge.plugin import (
    MIN_FRAME_SIZE,
    ConfigError,
    DatagramEndpoint,
    Link,
    LinkError,
    LinkUrl,
    Option,
    RawPort,
    drops,
    format_address,
    hookimpl,
    host_port,
    integer,
)
from linkbridge.plugin.lab import LabSides

LAB_PORT = 47000


class UdpLink(Link):
    """Carries packets as UDP datagrams; accepts datagrams from the configured peer only."""

    scheme = "udp"
    summary = "each packet as one UDP datagram to a remote host:port"
    target_help = "REMOTE_HOST:PORT (IPv6 as [ADDR]:PORT)"
    options = (
        Option("bind", host_port, None,
               "local HOST:PORT to receive on (default: any address, the remote's port)"),
        Option("mtu", integer(MIN_FRAME_SIZE, 65507), None,
               "largest packet carried (default: no limit); below 68 only with fragmentation "
               "(a larger --mtu)"),
    )

    def __init__(self, target: str, options: Mapping[str, Any]) -> None:
        super().__init__(target, options)
        try:
            self.remote = host_port(target)
        except ValueError as exc:
            raise ConfigError(f"link udp:{target}: bad target: {exc}") from None
        wildcard = "::" if ":" in self.remote[0] else "0.0.0.0"
        self.bind: tuple[str, int] = options["bind"] or (wildcard, self.remote[1])
        self._endpoint: DatagramEndpoint | None = None

    @property
    def mtu(self) -> int | None:
        value: int | None = self.config["mtu"]
        return value

    def open(self) -> None:
        self._endpoint = DatagramEndpoint(self.name, self.bind, self.remote)
        self.counters = self._endpoint.counters

    def _socket(self) -> DatagramEndpoint:
        if self._endpoint is None:
            raise LinkError(f"{self.name}: link is not open")
        return self._endpoint

    def send(self, packet: bytes) -> None:
        if self.mtu is not None and len(packet) > self.mtu:
            self.counters.drop(drops.MTU)
            return
        self._socket().send(packet)

    def send_many(self, packets: list[bytes]) -> None:
        """Send a batch in order; the socket sends runs of equal-size packets in one call."""
        mtu = self.mtu
        if mtu is not None and any(len(packet) > mtu for packet in packets):
            self.counters.drop(drops.MTU, sum(len(packet) > mtu for packet in packets))
            packets = [packet for packet in packets if len(packet) <= mtu]
        self._socket().send_many(packets)

    def receive(self, timeout: float) -> list[bytes]:
        return self._socket().receive(timeout)

    def fileno(self) -> int:
        """The socket's descriptor: the data path waits on it together with the tunnel's."""
        return self._socket().fileno()

    def return_address(self) -> str:
        """The peer's address, the only one it accepts frames from (cookie replies prove it)."""
        return format_address(self.remote)

    def raw_port(self) -> RawPort:
        """The socket for the data path's lean loop, which applies this link's MTU too."""
        return self._socket().raw_port(self.mtu)

    def close(self) -> None:
        if self._endpoint is not None:
            self._endpoint.close()
            self._endpoint = None  # later use is a LinkError, not an OSError on a closed fd

    @classmethod
    @contextlib.contextmanager
    def lab_pair(cls, url: LinkUrl, sides: LabSides) -> Iterator[tuple[LinkUrl, LinkUrl]]:
        if url.target or "bind" in url.options:
            raise ConfigError("the lab chooses the udp: addresses itself; give options only "
                              "(e.g. udp:?mtu=1400)")
        yield (
            url.with_target(format_address((sides.b_address, LAB_PORT))),
            url.with_target(format_address((sides.a_address, LAB_PORT))),
        )


@hookimpl
def linkbridge_register_links() -> list[type[Link]]:
    return [UdpLink]
