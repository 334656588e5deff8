"""The header fields `auto` compression works on, read from a packet it may compress. Pure.

`parse()` accepts only what the scheme rebuilds byte for byte: IPv4 without options and not a
fragment, or IPv6 without extension headers, carrying TCP, UDP (with a checksum) or an ICMP /
ICMPv6 echo, with every checksum valid and every length field equal to the packet's length.
Anything else crosses the link as it is.
"""

from __future__ import annotations

import struct

from linkbridge.wire.compress.sums import pseudo_sum, transport_valid, word_sum
from linkbridge.wire.frames import IPV4, IPV6, frame_byte, type_nibble

TCP, UDP, ICMP, ICMPV6 = 6, 17, 1, 58
ECHO_TYPES = {ICMP: (0, 8), ICMPV6: (128, 129)}  # echo reply, request
TIMESTAMPS = b"\x01\x01\x08\x0a"  # NOP NOP TS(kind 8, length 10): how Linux aligns them
CHECKSUM_AT = {TCP: 16, UDP: 6, ICMP: 2, ICMPV6: 2}  # offset of the checksum in its header
TCP_FIELDS = struct.Struct("!IIBBHHH")  # from byte 4: seq, ack, offset, flags, window, sum, urgent
_TS = struct.Struct("!II")
PLAIN_IPV4 = frame_byte(IPV4, 5)  # the first byte of an IPv4 header without options


class Headers:
    """One packet's headers as fields; `static` must equal the context's for a compressed
    frame, `key` names the flow (addresses, protocol, ports or echo identifier)."""

    __slots__ = (
        "ack",
        "csum",
        "flags",
        "ihl",
        "ip_id",
        "key",
        "options",
        "proto",
        "seq",
        "static",
        "thlen",
        "ts_at",
        "tsecr",
        "tsval",
        "urgent",
        "version",
        "window",
    )

    def __init__(self, version: int, ihl: int, proto: int, key: bytes, static: bytes,
                 ip_id: int) -> None:
        self.version, self.ihl, self.proto = version, ihl, proto
        self.key, self.static, self.ip_id = key, static, ip_id
        self.thlen = self.csum = self.seq = self.ack = self.flags = self.window = 0
        self.urgent = self.tsval = self.tsecr = 0
        self.options = b""
        self.ts_at = -1  # offset of the timestamp values in `options`, -1: none


def parse(packet: bytes) -> Headers | None:
    """The headers of a packet the scheme compresses, or None for one that crosses as it is."""
    size = len(packet)
    if size < 28:
        return None
    version = type_nibble(packet[0])
    if version == IPV4:
        if (packet[0] != PLAIN_IPV4 or int.from_bytes(packet[2:4], "big") != size
                or int.from_bytes(packet[6:8], "big") & 0x3FFF
                or packet[10:12] == b"\xff\xff" or word_sum(packet[:20])):
            return None  # options, a fragment, a bad length or header checksum
        ihl, proto, addresses = 20, packet[9], packet[12:20]
        headers = Headers(IPV4, ihl, proto, b"", packet[0:2] + packet[6:10],
                          int.from_bytes(packet[4:6], "big"))
    elif version == IPV6:
        if size < 48 or int.from_bytes(packet[4:6], "big") != size - 40:
            return None
        ihl, proto, addresses = 40, packet[6], packet[8:40]
        headers = Headers(IPV6, ihl, proto, b"", packet[0:4] + packet[6:8], 0)
    else:
        return None
    segment = memoryview(packet)[ihl:]
    if proto == TCP:
        if not _tcp(headers, packet, size - ihl):
            return None
        headers.key = addresses + packet[ihl:ihl + 4] + b"\x06"
    elif proto == UDP:
        if int.from_bytes(packet[ihl + 4:ihl + 6], "big") != size - ihl:
            return None
        headers.thlen = 8
        headers.key = addresses + packet[ihl:ihl + 4] + b"\x11"
    elif proto in ECHO_TYPES and version == (IPV4 if proto == ICMP else IPV6):
        if packet[ihl] not in ECHO_TYPES[proto]:
            return None
        headers.thlen = 8
        headers.seq = int.from_bytes(packet[ihl + 6:ihl + 8], "big")
        headers.key = addresses + packet[ihl:ihl + 2] + packet[ihl + 4:ihl + 6] + bytes((proto,))
    else:
        return None
    headers.csum = int.from_bytes(packet[ihl + CHECKSUM_AT[proto]:ihl + CHECKSUM_AT[proto] + 2],
                                  "big")
    if proto == UDP and headers.csum == 0:
        return None  # IPv4 UDP without a checksum: nothing would verify the rebuilt packet
    pseudo = 0 if proto == ICMP else pseudo_sum(addresses, proto, size - ihl)
    if not transport_valid(pseudo, segment):
        return None
    return headers


def _tcp(headers: Headers, packet: bytes, length: int) -> bool:
    """Fill in the TCP fields; False for a header that does not fit the packet."""
    ihl = headers.ihl
    if length < 20:
        return False
    (headers.seq, headers.ack, offset, headers.flags, headers.window, _sum,
     headers.urgent) = TCP_FIELDS.unpack_from(packet, ihl + 4)
    thlen = (offset >> 4) * 4
    if thlen < 20 or thlen > length:
        return False
    headers.thlen = thlen
    headers.static += bytes((offset & 0x0F,))
    options = headers.options = packet[ihl + 20:ihl + thlen]
    if options:
        at = 4 if options[:4] == TIMESTAMPS and len(options) >= 12 else timestamps_at(options)
        if at >= 0:
            headers.ts_at = at
            headers.tsval, headers.tsecr = _TS.unpack_from(options, at)
    return True


def timestamps_at(options: bytes) -> int:
    """Where the TCP timestamp values start in `options`, or -1."""
    at = option_at(options, 8, 10)
    return at + 2 if at >= 0 else -1


def option_at(options: bytes, kind: int, length: int | None = None) -> int:
    """Where the first whole TCP option `kind` (of `length` bytes, when given) starts in
    `options`, or -1."""
    i = 0
    while i < len(options):
        if options[i] == 0:
            break
        if options[i] == 1:
            i += 1
            continue
        if i + 1 >= len(options) or options[i + 1] < 2:
            break
        if (options[i] == kind and (length is None or options[i + 1] == length)
                and i + options[i + 1] <= len(options)):
            return i
        i += options[i + 1]
    return -1


def pack_timestamps(options: bytes, at: int, tsval: int, tsecr: int) -> bytes:
    """`options` with the timestamp values at `at` replaced."""
    return options[:at] + _TS.pack(tsval & 0xFFFFFFFF, tsecr & 0xFFFFFFFF) + options[at + 8:]
