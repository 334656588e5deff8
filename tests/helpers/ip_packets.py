"""Well-formed IPv4/IPv6 packets with valid checksums, for the compression and multipoint tests."""

from __future__ import annotations

import ipaddress
import struct

from linkbridge.wire.compress.sums import checksum, pseudo_sum

A4, B4 = bytes([198, 18, 0, 1]), bytes([198, 18, 0, 2])
A6 = bytes.fromhex("fd000198001900000000000000000001")
B6 = bytes.fromhex("fd000198001900000000000000000002")
TCP, UDP, ICMP, ICMPV6 = 6, 17, 1, 58


def ip_packet(version: int, proto: int, segment: bytes, *, src: bytes | None = None,
              dst: bytes | None = None, ip_id: int = 0, ttl: int = 64, tos: int = 0,
              checksum_at: int | None = None, df: bool = True, flow: int = 0) -> bytes:
    """`segment` under an IP header, its checksum (at `checksum_at`) filled in."""
    src = src or (A4 if version == 4 else A6)
    dst = dst or (B4 if version == 4 else B6)
    seg = bytearray(segment)
    if checksum_at is not None:
        seg[checksum_at:checksum_at + 2] = b"\0\0"
        pseudo = 0 if proto == ICMP else pseudo_sum(src + dst, proto, len(seg))
        total = (pseudo + int.from_bytes(seg + b"\0" * (len(seg) & 1), "big")) % 0xFFFF
        value = ~(total or 0xFFFF) & 0xFFFF
        if proto == UDP and value == 0:
            value = 0xFFFF
        seg[checksum_at:checksum_at + 2] = value.to_bytes(2, "big")
    if version == 4:
        header = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + len(seg), ip_id,
                                       0x4000 if df else 0, ttl, proto, 0, src, dst))
        header[10:12] = checksum(header).to_bytes(2, "big")
        return bytes(header) + bytes(seg)
    first = (6 << 28 | tos << 20 | flow).to_bytes(4, "big")
    return first + struct.pack("!HBB16s16s", len(seg), proto, ttl, src, dst) + bytes(seg)


def tcp(version: int = 4, *, seq: int = 1000, ack: int = 2000, flags: int = 0x10,
        window: int = 502, payload: bytes = b"", options: bytes = b"", urgent: int = 0,
        sport: int = 40000, dport: int = 5001, **ip: int) -> bytes:
    offset = (20 + len(options)) // 4 << 4
    header = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                         offset, flags, window, 0, urgent) + options
    return ip_packet(version, TCP, header + payload, checksum_at=16, **ip)  # type: ignore[arg-type]


def timestamps(tsval: int, tsecr: int) -> bytes:
    """NOP NOP TS, as Linux sends them."""
    return b"\x01\x01\x08\x0a" + struct.pack("!II", tsval & 0xFFFFFFFF, tsecr & 0xFFFFFFFF)


def udp(version: int = 4, *, payload: bytes = b"x" * 32, sport: int = 5353, dport: int = 9999,
        **ip: int) -> bytes:
    header = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
    return ip_packet(version, UDP, header + payload, checksum_at=6, **ip)  # type: ignore[arg-type]


def echo(version: int = 4, *, ident: int = 77, seq: int = 1, reply: bool = False,
         payload: bytes = bytes(range(56)), **ip: int) -> bytes:
    kind = (0 if reply else 8) if version == 4 else (129 if reply else 128)
    proto = ICMP if version == 4 else ICMPV6
    header = struct.pack("!BBHHH", kind, 0, 0, ident, seq)
    return ip_packet(version, proto, header + payload, checksum_at=2, **ip)  # type: ignore[arg-type]


def between(source: str, destination: str) -> bytes:
    """A small UDP packet from `source` to `destination` (addresses of one IP version)."""
    src, dst = ipaddress.ip_address(source), ipaddress.ip_address(destination)
    return ip_packet(src.version, UDP, bytes(8), src=src.packed, dst=dst.packed)
