"""The optional CRC-16 trailer of the serial link (`?crc=1`), so line noise is detected.

CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, as `binascii.crc_hqx` computes it),
appended big-endian after the packet and before SLIP escaping. Pure logic.
"""

from __future__ import annotations

import binascii

TRAILER = 2
INITIAL = 0xFFFF


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE of `data`."""
    return binascii.crc_hqx(data, INITIAL)


def append_crc(packet: bytes) -> bytes:
    """`packet` followed by its two-byte CRC."""
    return packet + crc16(packet).to_bytes(TRAILER, "big")


def strip_crc(frame: bytes) -> bytes | None:
    """The packet inside a frame whose trailer matches, or None when the frame is damaged."""
    if len(frame) <= TRAILER:
        return None
    packet, trailer = frame[:-TRAILER], frame[-TRAILER:]
    if crc16(packet).to_bytes(TRAILER, "big") != trailer:
        return None
    return packet
