"""The framing codec: round trips whole, byte by byte and split at random points."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkbridge_tcp.framing import FrameDecoder, FramingError, encode

packets = st.lists(st.binary(min_size=1, max_size=2000), max_size=20)


@given(packets)
def test_whole_stream_round_trips(sent: list[bytes]) -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"".join(map(encode, sent))) == sent
    assert decoder.pending == 0


@given(packets)
def test_byte_by_byte(sent: list[bytes]) -> None:
    stream = b"".join(map(encode, sent))
    decoder = FrameDecoder()
    got = [frame for i in range(len(stream)) for frame in decoder.feed(stream[i:i + 1])]
    assert got == sent


@given(packets, st.lists(st.integers(min_value=0), max_size=10))
def test_random_splits(sent: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(map(encode, sent))
    points = sorted({cut % (len(stream) + 1) for cut in cuts} | {0, len(stream)})
    decoder = FrameDecoder()
    got = [frame for start, end in itertools.pairwise(points)
           for frame in decoder.feed(stream[start:end])]
    assert got == sent


def test_zero_length_means_out_of_step() -> None:
    with pytest.raises(FramingError, match="zero-length"):
        FrameDecoder().feed(encode(b"ok") + b"\x00\x00")


@pytest.mark.parametrize("size", [0, 65536])
def test_unframeable_sizes(size: int) -> None:
    with pytest.raises(ValueError, match="cannot be framed"):
        encode(bytes(size))
