"""Sans-IO framing codecs for a plugin that frames a byte stream itself (a `StreamLink` with
`LENGTH_FRAMING` or `SLIP_FRAMING` needs none of them): public API, documented in
docs/plugins.md's API reference. Each module is fed bytes and returns whole frames.
"""

from __future__ import annotations

from linkbridge.framing import crc16, kiss, length_prefix, slip
from linkbridge.wire.packet import packet_problem

__all__ = ["crc16", "kiss", "length_prefix", "packet_problem", "slip"]
