"""Header compression between the tunnel and the link (`--compress off|vj|auto`). Pure logic.

`vj` is RFC 1144 as the kernel's cslip speaks it (vj.py); `auto` is linkbridge's own scheme
(lbhc.py over headers.py) for IPv4/IPv6 TCP, UDP and echo, with feedback that repairs a lost
context within a round trip. Wire formats: docs/compression.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from linkbridge.wire.compress.lbhc import Compressor, Decompressor
from linkbridge.wire.compress.vj import VjCompressor, VjDecompressor

OFF, VJ, AUTO = "off", "vj", "auto"
MODES = (OFF, VJ, AUTO)


class PacketCompressor(Protocol):
    """Packets to frames, never a longer one; `feedback` takes the peer's feedback frames."""

    def compress(self, packet: bytes) -> bytes: ...

    def feedback(self, frame: bytes) -> None: ...


class PacketDecompressor(Protocol):
    """Frames back to packets (None: dropped, counted); queues feedback for the peer;
    `frame_lost` is told when the framing below dropped a damaged frame."""

    def is_feedback(self, frame: bytes) -> bool: ...

    def feed(self, frame: bytes, now: float) -> bytes | None: ...

    def take_feedback(self) -> list[bytes]: ...

    def frame_lost(self) -> None: ...


def codec_pair(mode: str, drop: Callable[[str], None],
               first_gen: int = 0) -> tuple[PacketCompressor, PacketDecompressor]:
    """One end's compressor and decompressor for `mode` (vj or auto); drops go to `drop`."""
    if mode == VJ:
        return VjCompressor(), VjDecompressor(drop)
    if mode == AUTO:
        return Compressor(first_gen), Decompressor(drop)
    raise ValueError(f"no compression codec for mode {mode!r}")
