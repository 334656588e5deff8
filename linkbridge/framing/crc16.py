"""The optional CRC-16 trailer of the serial link (`?crc=1`), so line noise is detected.

CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, as `binascii.crc_hqx` computes it),
appended big-endian after the packet and before SLIP escaping. `CrcChecked` checks the frames
of a decoder: a damaged one is counted as `crc` and becomes a `Lost` mark. Pure logic.
"""

from __future__ import annotations

import binascii
from collections import Counter

from linkbridge.framing.events import FrameDecoder, Lost

TRAILER = 2
INITIAL = 0xFFFF

CRC = "crc"  # the drop reason of a damaged frame
REASONS = {CRC: "a frame whose CRC-16 trailer does not match (line noise)"}


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


class CrcChecked:
    """The frames of `decoder` with their trailers checked and stripped: a frame whose trailer
    does not match is counted in `errors` as `crc` and yields a `Lost` mark in its place."""

    def __init__(self, decoder: FrameDecoder, errors: Counter[str]) -> None:
        self.decoder = decoder
        self.errors = errors

    def feed(self, data: bytes) -> list[bytes | Lost]:
        """The decoder's frames and loss marks for `data`, each frame without its trailer."""
        checked: list[bytes | Lost] = []
        for item in self.decoder.feed(data):
            if type(item) is bytes:
                packet = strip_crc(item)
                if packet is None:
                    self.errors[CRC] += 1
                    checked.append(Lost(CRC))
                    continue
                item = packet
            checked.append(item)
        return checked
