"""The byte stuffing SLIP (RFC 1055) and KISS share, without I/O: frames between END bytes.

A frame is END, its body with END and ESC escaped (END -> ESC ESC_END, ESC -> ESC ESC_ESC),
END. KISS calls the same four bytes FEND, FESC, TFEND and TFESC. `StuffedDecoder` takes the
byte stream in chunks of any size and returns whole frame bodies and, in stream order among
them, a `Lost` mark (framing/events.py) for each frame it threw away; it counts those in
`errors` under the reasons its subclass names (SLIP's `slip_*`, KISS's `kiss_*`) and always
resynchronises at the next END. Its memory stays bounded by the largest frame it accepts, even
on endless line noise.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import ClassVar

from linkbridge.framing.events import Lost

END = 0xC0
ESC = 0xDB
ESC_END = 0xDC
ESC_ESC = 0xDD

_END = bytes([END])
_ESC = bytes([ESC])
_ESCAPED_END = bytes([ESC, ESC_END])
_ESCAPED_ESC = bytes([ESC, ESC_ESC])


def escape(body: bytes) -> bytes:
    """`body` with END and ESC escaped (no END left inside)."""
    return body.replace(_ESC, _ESCAPED_ESC).replace(_END, _ESCAPED_END)


def encode(body: bytes) -> bytes:
    """One frame: END, `body` escaped, END."""
    return b"".join((_END, escape(body), _END))


def encoded_size(body: bytes) -> int:
    """The number of line bytes `encode(body)` takes, without building it."""
    return len(body) + body.count(_ESC) + body.count(_END) + 2


_UNESCAPED = {ESC_END: _END, ESC_ESC: _ESC}
FEW_ESCAPES = 16  # up to this many, splitting at ESC beats two two-byte replace() passes


def unescape(body: bytes) -> bytes | None:
    """The bytes an escaped frame body (no END inside) stands for, or None on a bad escape."""
    escapes = body.count(_ESC)
    if not escapes:
        return body
    if escapes <= FEW_ESCAPES:
        first, *rest = body.split(_ESC)
        pieces = [first]
        for piece in rest:
            byte = _UNESCAPED.get(piece[0]) if piece else None
            if byte is None:
                return None
            pieces += (byte, piece[1:])
        return b"".join(pieces)
    packet = body.replace(_ESCAPED_END, _END).replace(_ESCAPED_ESC, _ESC)
    # Each replacement consumed one ESC of a valid pair (the first one cannot create pairs for
    # the second), so the body was valid exactly when every ESC was consumed.
    if len(body) - len(packet) != escapes:
        return None
    return packet


@dataclass(frozen=True)
class StuffingErrors:
    """The drop reasons a decoder counts: a bad escape, a frame too long, bytes out of step."""

    bad_escape: str
    oversize: str
    garbage: str


class StuffedDecoder:
    """Turns a byte-stuffed stream, fed in chunks of any size, into frames of <= max_frame bytes.

    The decoder starts out of step (the line may have been joined mid-frame): bytes before the
    first END are discarded as garbage. A frame with a bad escape or over `max_frame` bytes is
    discarded, counted and marked `Lost` where it was; decoding resumes at the next END. Empty
    frames (END END) are the normal gap between frames and count as nothing. `errors` may be a
    shared Counter (a link's drop counter) so that the errors show up there directly.
    Subclasses set `reasons`.
    """

    reasons: ClassVar[StuffingErrors]

    def __init__(self, max_frame: int, errors: Counter[str] | None = None) -> None:
        if max_frame < 1:
            raise ValueError("max_frame must be at least 1")
        self.max_frame = max_frame
        self.errors: Counter[str] = Counter() if errors is None else errors
        # A body that decodes to <= max_frame bytes has at most 2 * max_frame line bytes.
        self._max_pending = 2 * max_frame
        self._pending = bytearray()
        # Out of step: the reason counted when the next END ends the stretch being skipped.
        self._skipping: str | None = self.reasons.garbage
        self._skipped_bytes = False

    @property
    def buffered(self) -> int:
        """Bytes held back waiting for the END that closes the current frame."""
        return len(self._pending)

    def feed(self, data: bytes) -> list[bytes | Lost]:
        """Take the next bytes from the line; return the frames they complete and the marks
        of frames lost meanwhile, in stream order."""
        if _END not in data:
            self._hold(data)
            return []
        if self._pending:
            self._pending += data
            data = bytes(self._pending)
            self._pending.clear()
        *bodies, tail = data.split(_END)
        frames: list[bytes | Lost] = []
        reasons = self.reasons
        for body in bodies:
            if self._skipping is not None:
                self._resync(body, frames)
            elif not body:
                continue  # END END: the gap between two frames
            elif len(body) > self._max_pending:
                self._lose(reasons.oversize, frames)
            elif (frame := unescape(body)) is None:
                self._lose(reasons.bad_escape, frames)
            elif len(frame) > self.max_frame:
                self._lose(reasons.oversize, frames, len(frame))
            else:
                frames.append(frame)
        self._hold(tail)
        return frames

    def _lose(self, reason: str, frames: list[bytes | Lost], size: int | None = None) -> None:
        """A frame thrown away (of `size` bytes, when known): count it, and mark it where it
        was."""
        self.errors[reason] += 1
        frames.append(Lost(reason, size))

    def _resync(self, body: bytes, frames: list[bytes | Lost]) -> None:
        """The END that ends a stretch skipped out of step: count what was lost, get in step."""
        if self._skipping == self.reasons.oversize or body or self._skipped_bytes:
            self._lose(self._skipping or self.reasons.garbage, frames)
        self._skipping = None
        self._skipped_bytes = False

    def _hold(self, data: bytes) -> None:
        """Keep an unfinished frame, or start skipping once it can no longer fit max_frame."""
        if self._skipping is not None:
            self._skipped_bytes = self._skipped_bytes or bool(data)
        elif len(self._pending) + len(data) > self._max_pending:
            self._pending.clear()
            self._skipping = self.reasons.oversize
        else:
            self._pending += data
