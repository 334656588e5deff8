"""Packet validation before a frame may enter the tunnel."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkbridge.wire.packet import internet_checksum, packet_problem


def ipv4(payload: bytes = b"hello", ihl: int = 5) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 20 + (ihl - 5) * 4 + len(payload), 1, 0,
                         64, 17, 0, bytes([198, 19, 0, 1]), bytes([198, 19, 0, 2]))
    return header + bytes((ihl - 5) * 4) + payload


def ipv6(payload: bytes = b"hello") -> bytes:
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), 17, 64, bytes(16), bytes(16)) + payload


def test_well_formed() -> None:
    assert packet_problem(ipv4()) is None
    assert packet_problem(ipv4(ihl=6)) is None
    assert packet_problem(ipv6()) is None


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (b"", "empty"),
        (b"\x45" + bytes(10), "truncated"),
        (bytes([0x60]) + bytes(20), "truncated"),
        (b"\x44" + ipv4()[1:], "bad_header_length"),
        (ipv4() + b"\0", "length_mismatch"),
        (ipv4()[:-1], "length_mismatch"),
        (ipv6() + b"\0", "length_mismatch"),
        (b"\x15" + bytes(30), "not_ip"),
        (b"\x00", "keepalive"),
        (b"\x00\x00", "not_ip"),
    ],
)
def test_problems(packet: bytes, reason: str) -> None:
    assert packet_problem(packet) == reason


@given(st.binary(max_size=200))
def test_never_raises(data: bytes) -> None:
    assert packet_problem(data) in {None, "empty", "truncated", "bad_header_length",
                                    "length_mismatch", "not_ip", "keepalive",
                                    "unknown_extension"}


def test_checksum_of_rfc1071_example() -> None:
    data = bytes([0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7])
    assert internet_checksum(data) == ~0xDDF2 & 0xFFFF
    assert internet_checksum(data + internet_checksum(data).to_bytes(2, "big")) == 0
