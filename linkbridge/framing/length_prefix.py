"""Length-prefix framing for packets on a byte stream, without I/O (sans-IO).

Each packet travels as a 2-byte big-endian length followed by the packet. Unlike SLIP there is
nothing to resynchronise on: a length of zero, or one over the decoder's `max_frame`, means the
stream is out of step, `feed()` raises FramingError, and the stream must be reset (a new
connection, a flushed pipe). The decoder's memory stays bounded by `max_frame`.
"""

from __future__ import annotations

import struct
from collections import Counter

HEADER = struct.Struct("!H")
MAX_PACKET = 0xFFFF


class FramingError(ValueError):
    """The byte stream cannot be split into frames any more (it is out of step)."""


def encode(packet: bytes) -> bytes:
    """One frame for `packet`; a packet of 1..65535 bytes."""
    if not 1 <= len(packet) <= MAX_PACKET:
        raise ValueError(f"packet of {len(packet)} bytes cannot be framed (1..{MAX_PACKET})")
    return HEADER.pack(len(packet)) + packet


def encoded_size(packet: bytes) -> int:
    """The number of stream bytes `encode(packet)` takes."""
    return HEADER.size + len(packet)


class LengthDecoder:
    """Feed it the stream's bytes as they come; it returns every frame completed so far.

    Same shape as `slip.SlipDecoder` (`max_frame`, `errors`, `feed`, `buffered`), so a stream
    link can take either; this one yields no `Lost` marks and has no errors to count (`errors`
    stays as given): a length prefix carries no check, and the one damage it sees, a bad
    length, cannot be stepped over: it raises FramingError and the stream must be reset.
    """

    def __init__(self, max_frame: int = MAX_PACKET, errors: Counter[str] | None = None) -> None:
        if not 1 <= max_frame <= MAX_PACKET:
            raise ValueError(f"max_frame must be 1..{MAX_PACKET}")
        self.max_frame = max_frame
        self.errors: Counter[str] = Counter() if errors is None else errors
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes held back because their frame is not complete yet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Take the next bytes of the stream; return the frames they complete, in order."""
        self._buffer += data
        frames: list[bytes] = []
        offset = 0
        while len(self._buffer) - offset >= HEADER.size:
            (length,) = HEADER.unpack_from(self._buffer, offset)
            if not 1 <= length <= self.max_frame:
                self._buffer.clear()
                raise FramingError(f"frame length {length} is not 1..{self.max_frame}: "
                                   "the stream is out of step")
            end = offset + HEADER.size + length
            if end > len(self._buffer):
                break
            frames.append(bytes(self._buffer[offset + HEADER.size:end]))
            offset = end
        del self._buffer[:offset]
        return frames
