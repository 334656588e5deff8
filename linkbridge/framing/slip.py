"""SLIP framing (RFC 1055) without I/O: packets in, bytes out, and back.

Every frame is sent as END, the escaped packet, END. The decoder takes the byte stream in chunks
of any size and returns whole frames; it counts protocol errors in `errors` by reason (the
`slip_*` drop reasons of wire/drops.py) and always resynchronises at the next END. Its memory
stays bounded by the largest frame it accepts, even on endless line noise.
"""

from __future__ import annotations

from collections import Counter

from linkbridge.wire.drops import SLIP_BAD_ESCAPE, SLIP_GARBAGE, SLIP_OVERSIZE

END = 0xC0
ESC = 0xDB
ESC_END = 0xDC
ESC_ESC = 0xDD

_END = bytes([END])
_ESC = bytes([ESC])
_ESCAPED_END = bytes([ESC, ESC_END])
_ESCAPED_ESC = bytes([ESC, ESC_ESC])


def encode(packet: bytes) -> bytes:
    """One SLIP frame: END, `packet` with END and ESC escaped, END."""
    escaped = packet.replace(_ESC, _ESCAPED_ESC).replace(_END, _ESCAPED_END)
    return b"".join((_END, escaped, _END))


def encoded_size(packet: bytes) -> int:
    """The number of line bytes `encode(packet)` takes, without building it."""
    return len(packet) + packet.count(_ESC) + packet.count(_END) + 2


_UNESCAPED = {ESC_END: _END, ESC_ESC: _ESC}
FEW_ESCAPES = 16  # up to this many, splitting at ESC beats two two-byte replace() passes


def unescape(body: bytes) -> bytes | None:
    """The packet an escaped frame body (no END inside) stands for, or None on a bad escape."""
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


class SlipDecoder:
    """Turns a SLIP byte stream, fed in chunks of any size, into frames of <= max_frame bytes.

    The decoder starts out of step (the line may have been joined mid-frame): bytes before the
    first END are discarded as garbage. A frame with a bad escape or over `max_frame` bytes is
    discarded and counted; decoding resumes at the next END. Empty frames (END END) are the
    normal gap between frames and count as nothing. `errors` may be a shared Counter (a link's
    drop counter) so that the errors show up there directly.
    """

    def __init__(self, max_frame: int, errors: Counter[str] | None = None) -> None:
        if max_frame < 1:
            raise ValueError("max_frame must be at least 1")
        self.max_frame = max_frame
        self.errors: Counter[str] = Counter() if errors is None else errors
        # A body that decodes to <= max_frame bytes has at most 2 * max_frame line bytes.
        self._max_pending = 2 * max_frame
        self._pending = bytearray()
        # Out of step: the reason counted when the next END ends the stretch being skipped.
        self._skipping: str | None = SLIP_GARBAGE
        self._skipped_bytes = False

    @property
    def buffered(self) -> int:
        """Bytes held back waiting for the END that closes the current frame."""
        return len(self._pending)

    def feed(self, data: bytes) -> list[bytes]:
        """Take the next bytes from the line; return the frames they complete, in order."""
        if _END not in data:
            self._hold(data)
            return []
        if self._pending:
            self._pending += data
            data = bytes(self._pending)
            self._pending.clear()
        *bodies, tail = data.split(_END)
        frames: list[bytes] = []
        for body in bodies:
            if self._skipping is not None:
                self._resync(body)
            elif not body:
                continue  # END END: the gap between two frames
            elif len(body) > self._max_pending:
                self.errors[SLIP_OVERSIZE] += 1
            elif (frame := unescape(body)) is None:
                self.errors[SLIP_BAD_ESCAPE] += 1
            elif len(frame) > self.max_frame:
                self.errors[SLIP_OVERSIZE] += 1
            else:
                frames.append(frame)
        self._hold(tail)
        return frames

    def _resync(self, body: bytes) -> None:
        """The END that ends a stretch skipped out of step: count what was lost, get in step."""
        if self._skipping == SLIP_OVERSIZE or body or self._skipped_bytes:
            self.errors[self._skipping or SLIP_GARBAGE] += 1
        self._skipping = None
        self._skipped_bytes = False

    def _hold(self, data: bytes) -> None:
        """Keep an unfinished frame, or start skipping once it can no longer fit max_frame."""
        if self._skipping is not None:
            self._skipped_bytes = self._skipped_bytes or bool(data)
        elif len(self._pending) + len(data) > self._max_pending:
            self._pending.clear()
            self._skipping = SLIP_OVERSIZE
        else:
            self._pending += data
