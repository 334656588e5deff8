"""The length-prefix codec: round trips whole, byte by byte and split at random points; an
out-of-step stream is an error, never a wrong packet; memory stays bounded."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkbridge.framing.length_prefix import (
    MAX_PACKET,
    FramingError,
    LengthDecoder,
    encode,
    encoded_size,
)

packets = st.lists(st.binary(min_size=1, max_size=2000), max_size=20)


@given(packets)
def test_whole_stream_round_trips(sent: list[bytes]) -> None:
    decoder = LengthDecoder()
    stream = b"".join(map(encode, sent))
    assert decoder.feed(stream) == sent
    assert decoder.buffered == 0
    assert len(stream) == sum(map(encoded_size, sent))


@given(packets)
def test_byte_by_byte(sent: list[bytes]) -> None:
    stream = b"".join(map(encode, sent))
    decoder = LengthDecoder()
    got = [frame for i in range(len(stream)) for frame in decoder.feed(stream[i:i + 1])]
    assert got == sent


@given(packets, st.lists(st.integers(min_value=0), max_size=10))
def test_random_splits(sent: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(map(encode, sent))
    points = sorted({cut % (len(stream) + 1) for cut in cuts} | {0, len(stream)})
    decoder = LengthDecoder()
    got = [frame for start, end in itertools.pairwise(points)
           for frame in decoder.feed(stream[start:end])]
    assert got == sent


@given(packets, st.binary(min_size=1, max_size=64))
def test_two_decoders_in_memory_agree(sent: list[bytes], tail: bytes) -> None:
    """One end's encoder against the other's decoder, with an unfinished frame left over."""
    partial = encode(tail)[:-1]
    decoder = LengthDecoder()
    assert decoder.feed(b"".join(map(encode, sent)) + partial) == sent
    assert decoder.buffered == len(partial)


def test_zero_length_means_out_of_step() -> None:
    decoder = LengthDecoder()
    with pytest.raises(FramingError, match="out of step"):
        decoder.feed(encode(b"ok") + b"\x00\x00")
    assert decoder.buffered == 0  # nothing of the broken stream is kept


def test_a_length_over_max_frame_is_out_of_step_before_it_is_buffered() -> None:
    decoder = LengthDecoder(max_frame=100)
    with pytest.raises(FramingError, match=r"101 is not 1\.\.100"):
        decoder.feed(b"\x00\x65")  # the header alone: no waiting for 101 bytes first
    assert decoder.buffered == 0


@given(st.binary(max_size=4000))
def test_noise_never_grows_the_buffer_past_a_frame(noise: bytes) -> None:
    decoder = LengthDecoder(max_frame=200)
    for start in range(0, len(noise), 97):
        try:
            decoder.feed(noise[start:start + 97])
        except FramingError:
            continue
        assert decoder.buffered <= 2 + 200 + 97


@pytest.mark.parametrize("size", [0, MAX_PACKET + 1])
def test_unframeable_sizes(size: int) -> None:
    with pytest.raises(ValueError, match="cannot be framed"):
        encode(bytes(size))
