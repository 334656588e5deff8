"""On-air framing of a half-duplex radio's frames (`framing=`): how many bits a frame takes on
the air once HDLC or AX.25 has wrapped it. Pure logic.

HDLC (ISO 13239, as AX.25 2.2 section 3 uses it): an opening flag 0x7E, the frame's bytes and
its FCS (CRC-16/X.25: polynomial 0x1021 reflected, initial value and final XOR 0xFFFF, sent
low byte first), bit-stuffed (a 0 after every five consecutive 1s, bits sent least
significant first), and a closing flag. `ax25` puts an AX.25 UI frame's header in front of the
frame first: destination and source addresses (7 bytes each), control 0x03 (UI) and PID 0xCC
(IP), as linkbridge's `kiss:` link sends with `mode=ax25`. NRZI, as AFSK modems send it, does
not change the bit count.
"""

from __future__ import annotations

FRAMINGS = ("none", "hdlc", "ax25")
FLAG_BITS = 8
FCS_POLYNOMIAL = 0x8408  # 0x1021, bit-reversed: the FCS is computed least significant bit first
STUFF_AFTER = 5  # consecutive ones after which a zero is inserted


def _address(call: str, ssid_byte: int) -> bytes:
    return bytes(ord(char) << 1 for char in call.ljust(6)) + bytes([ssid_byte])


# To QST (a command: C bit set in the destination's SSID byte) from N0CALL (the address field's
# last entry: extension bit set); then UI, IP. Callsigns only change the stuffing of the header
# (a shifted ASCII character has a 0 in its first bit sent, so it never stuffs).
AX25_UI_HEADER = _address("QST", 0xE0) + _address("N0CALL", 0x61) + bytes([0x03, 0xCC])


def fcs(data: bytes) -> int:
    """The HDLC frame check sequence of `data` (CRC-16/X.25; check value of b"123456789":
    0x906E)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ FCS_POLYNOMIAL if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def stuffed_bits(data: bytes) -> int:
    """Bits `data` takes once bit-stuffed, sent least significant bit of each byte first."""
    ones = inserted = 0
    for byte in data:
        for bit in range(8):
            if byte >> bit & 1:
                ones += 1
                if ones == STUFF_AFTER:
                    inserted += 1
                    ones = 0
            else:
                ones = 0
    return len(data) * 8 + inserted


def hdlc_bits(body: bytes) -> int:
    """On-air bits of an HDLC frame carrying `body`: two flags around body and FCS, stuffed."""
    return 2 * FLAG_BITS + stuffed_bits(body + fcs(body).to_bytes(2, "little"))


def on_air_bits(frame: bytes, framing: str) -> int:
    """Bits `frame` takes on the air with `framing` (one of FRAMINGS)."""
    if framing == "hdlc":
        return hdlc_bits(frame)
    if framing == "ax25":
        return hdlc_bits(AX25_UI_HEADER + frame)
    if framing == "none":
        return len(frame) * 8
    raise ValueError(f"unknown framing {framing!r} (choose {', '.join(FRAMINGS)})")
