"""TCP MSS clamping (wire/mss.py): a SYN's MSS lowered with its checksum as a sender would
have computed it; everything else untouched."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkbridge.wire.mss import clamp_mss
from tests.helpers.ip_packets import tcp

SYN, SYN_ACK, ACK = 0x02, 0x12, 0x10


def mss(value: int) -> bytes:
    return struct.pack("!BBH", 2, 4, value)


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("flags", [SYN, SYN_ACK])
@pytest.mark.parametrize("before", [b"", b"\x01", b"\x01\x01\x01"])  # even and odd offsets
def test_a_syn_mss_is_lowered_with_a_valid_checksum(version: int, flags: int,
                                                    before: bytes) -> None:
    """The clamped SYN is byte for byte the one a sender with the lower MSS would send."""
    pad = b"\x01" * (-(len(before) + 4) % 4)
    original = tcp(version, flags=flags, options=before + mss(1460) + pad)
    largest = 93  # the smallest link's packet (a 100-byte frame less the 7-byte header)
    expected = largest - (20 if version == 4 else 40) - 20
    assert clamp_mss(original, largest) == tcp(version, flags=flags,
                                               options=before + mss(expected) + pad)


@pytest.mark.parametrize("packet", [
    tcp(4, flags=ACK, options=mss(1460)),  # not a SYN
    tcp(4, flags=SYN, options=mss(40)),  # small enough already
    tcp(4, flags=SYN, options=b"\x01\x01\x01\x01"),  # no MSS option
    tcp(4, flags=SYN, options=b"\x00\x00" + mss(1460)[:2]),  # the end of the options first
    tcp(4, flags=SYN, options=b"\x05\x00\x00\x00"),  # a malformed option length
    tcp(4, flags=SYN, options=mss(1460))[:30],  # truncated
    tcp(6, flags=SYN, options=mss(1460))[:45],
    b"", b"\x45", b"\x60" + bytes(10),
])
def test_anything_else_passes_as_it_is(packet: bytes) -> None:
    assert clamp_mss(packet, 93) is packet


def test_an_ipv4_fragment_is_left_alone() -> None:
    packet = bytearray(tcp(4, flags=SYN, options=mss(1460)))
    packet[6] |= 0x20  # more fragments
    assert clamp_mss(bytes(packet), 93) == bytes(packet)


@given(st.binary(max_size=120), st.integers(1, 2000))
def test_any_bytes_never_raise(data: bytes, largest: int) -> None:
    clamped = clamp_mss(data, largest)
    assert len(clamped) == len(data)
