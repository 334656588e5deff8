"""Length-prefix framing for packets on a byte stream, without I/O (sans-IO).

Each packet travels as a 2-byte big-endian length followed by the packet. A length of zero
never occurs in a valid stream: it means the stream is out of step, and the connection must
be reset.
"""

from __future__ import annotations

import struct

HEADER = struct.Struct("!H")
MAX_PACKET = 0xFFFF


class FramingError(ValueError):
    """The byte stream cannot be split into frames any more (it is out of step)."""


def encode(packet: bytes) -> bytes:
    """One frame for `packet`; a packet of 1..65535 bytes."""
    if not 1 <= len(packet) <= MAX_PACKET:
        raise ValueError(f"packet of {len(packet)} bytes cannot be framed (1..{MAX_PACKET})")
    return HEADER.pack(len(packet)) + packet


class FrameDecoder:
    """Feed it the stream's bytes as they come; it returns every frame completed so far."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held back because their frame is not complete yet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        frames: list[bytes] = []
        offset = 0
        while len(self._buffer) - offset >= HEADER.size:
            (length,) = HEADER.unpack_from(self._buffer, offset)
            if length == 0:
                raise FramingError(f"zero-length frame at stream offset {offset}")
            end = offset + HEADER.size + length
            if end > len(self._buffer):
                break
            frames.append(bytes(self._buffer[offset + HEADER.size:end]))
            offset = end
        del self._buffer[:offset]
        return frames
