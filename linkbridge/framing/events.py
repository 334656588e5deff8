"""What a framing decoder yields besides frames: a mark where a frame was lost or damaged.

A decoder's `feed()` returns the frames it completed (plain `bytes`, the common case costs
nothing more) and, in stream order among them, a `Lost` mark for each frame it had to throw
away (a bad escape, a frame too long, bytes out of step, a CRC mismatch). The layer above
reacts to the mark (VJ decompression tosses until a frame names its connection, as the
kernel's `slhc_toss()`); the drop itself is counted under the same reason in the decoder's
`errors`. Pure logic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Lost:
    """A frame was lost or damaged at this point of the stream; `reason` is its drop reason,
    `size` the frame's length in bytes when the decoder knows it (a frame too long)."""

    reason: str
    size: int | None = None


class FrameDecoder(Protocol):
    """Bytes of a stream in, frames and loss marks out, in stream order."""

    def feed(self, data: bytes) -> Sequence[bytes | Lost]: ...
