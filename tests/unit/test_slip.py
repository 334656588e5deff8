"""The SLIP codec and CRC-16 trailer: round trips, any chunking, noise, errors and their loss
marks, bounded memory."""

from __future__ import annotations

import itertools
from collections import Counter

from hypothesis import assume, given
from hypothesis import strategies as st

from linkbridge.framing.crc16 import CRC, CrcChecked, append_crc, crc16, strip_crc
from linkbridge.framing.events import Lost
from linkbridge.framing.slip import (
    BAD_ESCAPE,
    END,
    ESC,
    ESC_END,
    ESC_ESC,
    GARBAGE,
    OVERSIZE,
    SlipDecoder,
    encode,
    encoded_size,
    unescape,
)

MAX_FRAME = 300

# Bytes that stress the codec: its four special values are as likely as all others together
# (random bytes below 0x80 are mapped onto them).
SPECIAL_HEAVY = bytes((END, ESC, ESC_END, ESC_ESC)[i % 4] if i < 0x80 else i for i in range(256))
special_heavy = st.binary(max_size=400).map(lambda data: data.translate(SPECIAL_HEAVY))
packets = st.lists(st.binary(min_size=1, max_size=MAX_FRAME) | special_heavy.filter(
    lambda b: 0 < len(b) <= MAX_FRAME), max_size=12)


def decode_in_pieces(stream: bytes, cuts: list[int],
                     max_frame: int = MAX_FRAME) -> tuple[list[bytes | Lost], Counter[str]]:
    """Frames and loss marks of `stream` fed in pieces cut at `cuts`, and the errors counted."""
    decoder = SlipDecoder(max_frame)
    frames: list[bytes | Lost] = []
    bounds = [0, *sorted(cut % (len(stream) + 1) for cut in cuts), len(stream)]
    for start, end in itertools.pairwise(bounds):
        frames += decoder.feed(stream[start:end])
    return frames, decoder.errors


@given(packets)
def test_round_trip(sent: list[bytes]) -> None:
    stream = b"".join(map(encode, sent))
    frames, errors = decode_in_pieces(stream, [])
    assert frames == sent
    assert not errors
    assert len(stream) == sum(map(encoded_size, sent))


@given(special_heavy, st.lists(st.integers(0, 10_000), max_size=30))
def test_whole_byte_by_byte_and_split_anywhere_agree(stream: bytes, cuts: list[int]) -> None:
    """Frames and loss marks alike, in the same order; each error counted is one loss mark."""
    whole = decode_in_pieces(stream, [])
    items, errors = whole
    assert sorted(item.reason for item in items if isinstance(item, Lost)) == \
        sorted(errors.elements())
    assert decode_in_pieces(stream, list(range(len(stream)))) == whole
    assert decode_in_pieces(stream, cuts) == whole


@given(packets, st.lists(special_heavy, min_size=13, max_size=13),
       st.lists(st.integers(0, 10_000), max_size=20))
def test_noise_between_frames_never_costs_a_real_frame(
        sent: list[bytes], noise: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(n + encode(p) for n, p in zip(noise, sent, strict=False)) + noise[-1]
    frames, _errors = decode_in_pieces(stream, cuts)
    remaining = iter(frames)
    assert all(any(frame == packet for frame in remaining) for packet in sent)


def crc_valid_pieces(noise: bytes) -> bool:
    """Whether some END-delimited piece of the noise happens to be a well-formed CRC frame."""
    for piece in noise.split(bytes([END])):
        body = unescape(piece)
        if body is not None and strip_crc(body) is not None:
            return True
    return False


@given(packets, st.lists(special_heavy, min_size=13, max_size=13),
       st.lists(st.integers(0, 10_000), max_size=20))
def test_with_crc_noise_never_yields_a_packet_that_was_not_sent(
        sent: list[bytes], noise: list[bytes], cuts: list[int]) -> None:
    assume(not any(map(crc_valid_pieces, noise)))  # a 1 in 65536 coincidence CRC cannot catch
    stream = b"".join(n + encode(append_crc(p)) for n, p in zip(noise, sent, strict=False))
    frames, _errors = decode_in_pieces(stream + noise[-1], cuts, MAX_FRAME + 2)
    delivered = [packet for frame in frames if isinstance(frame, bytes)
                 and (packet := strip_crc(frame)) is not None]
    assert delivered == sent


@given(st.lists(special_heavy, max_size=40), st.integers(1, 64))
def test_memory_stays_bounded_on_endless_noise(chunks: list[bytes], max_frame: int) -> None:
    decoder = SlipDecoder(max_frame)
    for chunk in chunks:
        for frame in decoder.feed(chunk):
            assert isinstance(frame, Lost) or len(frame) <= max_frame
        assert decoder.buffered <= 2 * max_frame


def test_noise_without_any_end_is_never_buffered_past_the_bound() -> None:
    decoder = SlipDecoder(100)
    decoder.feed(bytes([END]))
    for _ in range(1000):
        assert decoder.feed(b"\x55" * 97) == []
        assert decoder.buffered <= 200
    assert decoder.feed(bytes([END]) + encode(b"next")) == [Lost(OVERSIZE), b"next"]
    assert decoder.errors == Counter({OVERSIZE: 1})


def test_errors_are_counted_by_reason_marked_in_place_and_decoding_resumes() -> None:
    decoder = SlipDecoder(8)
    stream = (b"junk" + encode(b"first")
              + bytes([END, ESC, 0x41, END])  # ESC followed by a plain byte
              + encode(b"123456789")  # one byte over max_frame
              + encode(bytes([ESC, END, 0x20]))
              + bytes([END, ESC, END]))  # ESC right before END
    assert decoder.feed(stream) == [Lost(GARBAGE), b"first", Lost(BAD_ESCAPE), Lost(OVERSIZE, 9),
                                    bytes([ESC, END, 0x20]), Lost(BAD_ESCAPE)]
    assert decoder.errors == Counter({GARBAGE: 1, BAD_ESCAPE: 2, OVERSIZE: 1})


def test_escaped_oversize_frame_counts_once() -> None:
    decoder = SlipDecoder(4)
    got = decoder.feed(bytes([END]) + encode(bytes([END]) * 5) + encode(b"ok"))
    assert got == [Lost(OVERSIZE), b"ok"]
    assert decoder.errors == Counter({OVERSIZE: 1})


def test_encoding_escapes_exactly_the_two_special_bytes() -> None:
    assert encode(bytes([1, END, 2, ESC, 3])) == bytes(
        [END, 1, ESC, ESC_END, 2, ESC, ESC_ESC, 3, END])


def test_errors_can_land_in_a_shared_counter() -> None:
    drops: Counter[str] = Counter({"other": 1})
    SlipDecoder(10, errors=drops).feed(b"x" + bytes([END]))
    assert drops == Counter({"other": 1, GARBAGE: 1})


def test_crc_checked_frames_lose_their_trailer_and_damaged_ones_become_loss_marks() -> None:
    errors: Counter[str] = Counter()
    decoder = CrcChecked(SlipDecoder(20, errors), errors)
    damaged = bytearray(append_crc(b"two"))
    damaged[0] ^= 0x01
    stream = (encode(append_crc(b"one")) + encode(bytes(damaged)) + bytes([ESC, 0x01, END])
              + encode(append_crc(b"three")))
    assert decoder.feed(stream) == [b"one", Lost(CRC), Lost(BAD_ESCAPE), b"three"]
    assert errors == Counter({CRC: 1, BAD_ESCAPE: 1})


def test_crc_check_value_and_trailer() -> None:
    assert crc16(b"123456789") == 0x29B1  # CRC-16/CCITT-FALSE check value
    assert append_crc(b"123456789") == b"123456789\x29\xb1"
    assert strip_crc(append_crc(b"payload")) == b"payload"
    assert strip_crc(b"\x29") is None


@given(st.binary(min_size=1, max_size=200), st.data())
def test_crc_catches_every_single_bit_error(packet: bytes, data: st.DataObject) -> None:
    frame = bytearray(append_crc(packet))
    bit = data.draw(st.integers(0, len(frame) * 8 - 1))
    frame[bit // 8] ^= 1 << (bit % 8)
    assert strip_crc(bytes(frame)) is None
