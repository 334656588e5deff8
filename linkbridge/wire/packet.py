"""IP packet checks done before a frame from a link may enter the tunnel. Pure logic."""

from __future__ import annotations

from linkbridge.wire.drops import (
    BAD_HEADER_LENGTH,
    EMPTY,
    KEEPALIVE,
    LENGTH_MISMATCH,
    MALFORMED,
    NOT_IP,
    TRUNCATED,
    UNKNOWN_EXTENSION,
)
from linkbridge.wire.frames import EXTENSION, IPV4, IPV6, KEEPALIVE_FRAME

IPV4_MIN_HEADER = 20
IPV6_HEADER = 40


def packet_problem(packet: bytes) -> str | None:
    """Return why `packet` is not a well-formed IPv4/IPv6 packet, or None when it is.

    Checks the version, the header length and that the length field matches the frame length
    exactly (a truncated or padded frame is malformed). The reason is a short counter name;
    a keepalive frame gets KEEPALIVE (never written to the device, and no malformation), an
    extension frame UNKNOWN_EXTENSION (a subtype no layer on this side consumed below).
    """
    if not packet:
        return EMPTY
    if packet == KEEPALIVE_FRAME:
        return KEEPALIVE
    # frames.type_nibble() and low_nibble() written out: this runs for every packet written
    # into the device, where two calls more per packet cost a tenth of the 64-byte packet rate
    # (docs/performance.md, "One harness for both trees")
    first = packet[0]
    version = first >> 4
    if version == IPV4:
        if len(packet) < IPV4_MIN_HEADER:
            return TRUNCATED
        header_length = (first & 0x0F) * 4
        if header_length < IPV4_MIN_HEADER or header_length > len(packet):
            return BAD_HEADER_LENGTH
        if int.from_bytes(packet[2:4], "big") != len(packet):
            return LENGTH_MISMATCH
        return None
    if version == IPV6:
        if len(packet) < IPV6_HEADER:
            return TRUNCATED
        if IPV6_HEADER + int.from_bytes(packet[4:6], "big") != len(packet):
            return LENGTH_MISMATCH
        return None
    return UNKNOWN_EXTENSION if version == EXTENSION else NOT_IP


def drop_reason(problem: str) -> str:
    """The drop counter for a frame `packet_problem()` refused: `keepalive` for a keepalive,
    `unknown_extension` for an extension frame, else `malformed_<problem>`."""
    return problem if problem in (KEEPALIVE, UNKNOWN_EXTENSION) else MALFORMED + problem


def internet_checksum(data: bytes) -> int:
    """The 16-bit ones'-complement checksum of RFC 1071."""
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
