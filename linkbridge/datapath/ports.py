"""The original tool's contract: the tunnel as raw IP packets on local UDP RX/TX ports.

The tunnel listens on RX_PORT for packets from the link and sends what it reads from the
device to TX_PORT, where the link listens. The link half does the mirror image.
"""

from __future__ import annotations

from linkbridge.datapath.datagram import DatagramEndpoint, same_host

DEFAULT_HOST = "127.0.0.1"


def tunnel_ports(rx_port: int, tx_port: int, host: str = DEFAULT_HOST) -> DatagramEndpoint:
    """The tunnel's side: bound to RX_PORT, sending to TX_PORT."""
    return DatagramEndpoint(f"ports rx={rx_port} tx={tx_port}", (host, rx_port), (host, tx_port),
                            same_host((host, tx_port)))


def link_ports(rx_port: int, tx_port: int, host: str = DEFAULT_HOST) -> DatagramEndpoint:
    """The link's side, serving an external tunnel: bound to TX_PORT, sending to RX_PORT."""
    return DatagramEndpoint(f"ports rx={rx_port} tx={tx_port}", (host, tx_port), (host, rx_port),
                            same_host((host, rx_port)))
