"""SLIP framing (RFC 1055) without I/O: packets in, bytes out, and back.

Every frame is sent as END, the escaped packet, END (the byte stuffing of framing/stuffing.py,
which KISS shares). The decoder takes the byte stream in chunks of any size and returns whole
frames, with a `Lost` mark (framing/events.py) where it threw one away; it counts those in
`errors` under the `slip_*` drop reasons below (`REASONS` describes them) and always
resynchronises at the next END. Its memory stays bounded by the largest frame it accepts, even
on endless line noise.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from linkbridge.framing.events import Lost
from linkbridge.framing.stuffing import (
    END,
    ESC,
    ESC_END,
    ESC_ESC,
    FEW_ESCAPES,
    StuffedDecoder,
    StuffingErrors,
    encode,
    encoded_size,
    unescape,
)

__all__ = ["BAD_ESCAPE", "END", "ESC", "ESC_END", "ESC_ESC", "FEW_ESCAPES", "GARBAGE",
           "OVERSIZE", "REASONS", "SlipDecoder", "encode", "encoded_size", "unescape"]

# The drop reasons the decoder counts (a link that uses it declares them: Link.drop_reasons)
BAD_ESCAPE = "slip_bad_escape"
OVERSIZE = "slip_oversize"
GARBAGE = "slip_garbage"
REASONS = {
    BAD_ESCAPE: "a SLIP frame with ESC followed by anything but ESC_END or ESC_ESC",
    OVERSIZE: "a SLIP frame longer than the largest the link accepts",
    GARBAGE: "bytes before the first SLIP END (the line was joined mid-frame)",
}


class SlipDecoder(StuffedDecoder):
    """Turns a SLIP byte stream, fed in chunks of any size, into frames of <= max_frame bytes.

    The decoder starts out of step (the line may have been joined mid-frame): bytes before the
    first END are discarded as garbage, unless `first_frame` accepts them as a whole frame (RFC
    1055 lets a sender frame a packet as `packet END`, so a peer's first frame has no leading
    END: a link passes a check that it is an IP packet). A frame with a bad escape or over
    `max_frame` bytes is discarded, counted and marked `Lost`; decoding resumes at the next
    END. Empty frames (END END) are the normal gap between frames and count as nothing.
    `errors` may be a shared Counter (a link's drop counter) so that the errors show up there
    directly.
    """

    reasons = StuffingErrors(bad_escape=BAD_ESCAPE, oversize=OVERSIZE, garbage=GARBAGE)

    def __init__(self, max_frame: int, errors: Counter[str] | None = None,
                 first_frame: Callable[[bytes], bool] | None = None) -> None:
        super().__init__(max_frame, errors)
        self._first_frame = first_frame
        if first_frame is not None:
            self._skipping = None  # hold the first bytes: they may be a whole frame

    def feed(self, data: bytes) -> list[bytes | Lost]:
        accept = self._first_frame
        if accept is None or _END not in data:
            return super().feed(data)
        self._first_frame = None
        if self._skipping is not None:  # the first stretch outgrew any frame: garbage
            return super().feed(data)
        head, _end, rest = data.partition(_END)
        body = bytes(self._pending) + head
        self._pending.clear()
        frames: list[bytes | Lost] = []
        if body:
            frame = unescape(body) if len(body) <= self._max_pending else None
            if frame is not None and len(frame) <= self.max_frame and accept(frame):
                frames.append(frame)
            else:
                self._lose(self.reasons.garbage, frames)
        return frames + super().feed(_END + rest)


_END = bytes([END])
