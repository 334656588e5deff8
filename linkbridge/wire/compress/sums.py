"""Ones'-complement sums and the small integer codes the compression formats share. Pure.

The Internet checksum (RFC 1071) of a byte string is its 16-bit words added with end-around
carry. Because 0x10000 = 1 (mod 0xFFFF), that sum is the whole string read as one big integer,
modulo 0xFFFF: one C-speed operation instead of a loop over words.
"""

from __future__ import annotations

import struct

Bytes = bytes | bytearray | memoryview
ONES = 0xFFFF
_U32 = struct.Struct("!I")


def word_sum(data: Bytes) -> int:
    """`data`'s 16-bit words (a last odd byte padded with zero) summed modulo 0xFFFF."""
    value = int.from_bytes(data, "big")
    if len(data) & 1:
        value <<= 8
    return value % ONES


def checksum(data: Bytes) -> int:
    """The Internet checksum field for `data` (the field itself counted as zero)."""
    total = word_sum(data)
    if total == 0 and any(data):
        total = ONES  # a non-zero sum that wraps is 0xFFFF in ones' complement
    return ~total & ONES


def pseudo_sum(addresses: bytes, proto: int, length: int) -> int:
    """The sum of the TCP/UDP/ICMPv6 pseudo-header of an IPv4 or IPv6 packet, given its source
    and destination addresses as one string (the same sum for both versions: the fields
    differ in width, not in what they add up to)."""
    return (int.from_bytes(addresses, "big") + proto + length) % ONES


def transport_valid(pseudo: int, segment: Bytes) -> bool:
    """Whether a transport segment's checksum holds over `pseudo` (0 for ICMPv4)."""
    return (pseudo + word_sum(segment)) % ONES == 0


# The varint of the compressed formats: 1 byte 0xxxxxxx (0..127), 2 bytes 10xxxxxx + 1
# (0..16383), 3 bytes 110xxxxx + 2 (0..2**21-1), 4 bytes 1110xxxx + 3 (0..2**28-1).
VARINT_MAX = (1 << 28) - 1


def varint(value: int) -> bytes:
    """`value` (0..VARINT_MAX) in 1 to 4 bytes."""
    if value < 0x80:
        return bytes((value,))
    if value < 0x4000:
        return (0x8000 | value).to_bytes(2, "big")
    if value < 0x200000:
        return (0xC00000 | value).to_bytes(3, "big")
    if value <= VARINT_MAX:
        return _U32.pack(0xE0000000 | value)
    raise ValueError(f"{value} does not fit a varint")


def varint_size(value: int) -> int:
    """How many bytes varint(value) takes."""
    return 1 if value < 0x80 else 2 if value < 0x4000 else 3 if value < 0x200000 else 4


def read_varint(data: bytes, offset: int) -> tuple[int, int]:
    """(value, next offset) of the varint at `offset`; IndexError when `data` ends inside it,
    ValueError for a first byte of 1111xxxx."""
    first = data[offset]
    if first < 0x80:
        return first, offset + 1
    if first < 0xC0:
        return (first & 0x3F) << 8 | data[offset + 1], offset + 2
    if first < 0xE0:
        if offset + 3 > len(data):
            raise IndexError("varint")
        return (first & 0x1F) << 16 | int.from_bytes(data[offset + 1:offset + 3], "big"), offset + 3
    if first < 0xF0:
        if offset + 4 > len(data):
            raise IndexError("varint")
        return (first & 0x0F) << 24 | int.from_bytes(data[offset + 1:offset + 4], "big"), offset + 4
    raise ValueError("varint")
