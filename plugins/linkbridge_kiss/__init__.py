"""The `kiss:` and `kiss+tcp:` links: IP over KISS TNCs and radio modems.

KISS frames (linkbridge.plugin.kiss) to a TNC on a serial port or a soft TNC over TCP, which
reconnect with backoff instead of ending the tunnel. A frame carries the raw IP packet, an
AX.25 UI frame (interoperates with Linux's kissattach), or tncattach's TUN or Ethernet framing;
see docs/kiss.md. In `ax25` and `ethernet` mode a link has station addresses (many peers);
`python -m linkbridge_kiss.hub` is a shared KISS channel between ptys for the lab.
"""

from __future__ import annotations

from linkbridge.plugin import Link, hookimpl
from linkbridge_kiss.links import KissLink, KissTcpLink

__all__ = ["KissLink", "KissTcpLink"]


@hookimpl
def linkbridge_register_links() -> list[type[Link]]:
    return [KissLink, KissTcpLink]
