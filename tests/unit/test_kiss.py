"""The KISS codec: round trips, any chunking, noise, ports, commands, SMACK/FlexNet, memory."""

from __future__ import annotations

import itertools
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from linkbridge.framing import kiss, stuffing
from linkbridge.framing.events import Lost
from linkbridge.framing.kiss import (
    BAD_ESCAPE,
    CRC,
    FEND,
    FESC,
    GARBAGE,
    NOT_DATA,
    OTHER_PORT,
    OVERSIZE,
    TFEND,
    TFESC,
    KissDecoder,
    crc_arc,
    crc_flex,
    data_frame_size,
    encode_command,
    encode_data,
    flex_frame,
    smack_frame,
)

MAX_DATA = 300
SPECIAL_HEAVY = bytes((FEND, FESC, TFEND, TFESC)[i % 4] if i < 0x80 else i for i in range(256))
special_heavy = st.binary(max_size=400).map(lambda data: data.translate(SPECIAL_HEAVY))
payloads = st.lists(st.binary(min_size=1, max_size=MAX_DATA) | special_heavy.filter(
    lambda b: 0 < len(b) <= MAX_DATA), max_size=12)
ports = st.integers(0, kiss.MAX_PORT)


def decode_in_pieces(stream: bytes, cuts: list[int], port: int = 0,
                     max_data: int = MAX_DATA) -> tuple[list[bytes | Lost], Counter[str]]:
    decoder = KissDecoder(max_data, port)
    got: list[bytes | Lost] = []
    bounds = [0, *sorted(cut % (len(stream) + 1) for cut in cuts), len(stream)]
    for start, end in itertools.pairwise(bounds):
        got += decoder.feed(stream[start:end])
    return got, decoder.errors


@given(payloads, ports)
def test_round_trip_on_any_port(sent: list[bytes], port: int) -> None:
    stream = b"".join(encode_data(payload, port) for payload in sent)
    got, errors = decode_in_pieces(stream, [], port)
    assert got == sent
    assert not errors
    assert len(stream) == sum(data_frame_size(payload, port) for payload in sent)


@given(special_heavy, st.lists(st.integers(0, 10_000), max_size=30), ports)
def test_whole_byte_by_byte_and_split_anywhere_agree(stream: bytes, cuts: list[int],
                                                      port: int) -> None:
    whole = decode_in_pieces(stream, [], port)
    assert decode_in_pieces(stream, list(range(len(stream))), port) == whole
    assert decode_in_pieces(stream, cuts, port) == whole


@given(payloads, st.lists(special_heavy, min_size=13, max_size=13),
       st.lists(st.integers(0, 10_000), max_size=20))
def test_noise_between_frames_never_costs_a_real_frame(
        sent: list[bytes], noise: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(n + encode_data(p) for n, p in zip(noise, sent, strict=False)) + noise[-1]
    got, _errors = decode_in_pieces(stream, cuts)
    remaining = iter(got)
    assert all(any(frame == payload for frame in remaining) for payload in sent)


@given(st.lists(special_heavy, max_size=40), st.integers(1, 64))
def test_memory_stays_bounded_on_endless_noise(chunks: list[bytes], max_data: int) -> None:
    decoder = KissDecoder(max_data)
    for chunk in chunks:
        for payload in decoder.feed(chunk):
            assert isinstance(payload, Lost) or len(payload) <= max_data
        assert decoder.buffered <= 2 * (max_data + 3)


def test_noise_without_any_fend_is_never_buffered_past_the_bound() -> None:
    decoder = KissDecoder(100)
    decoder.feed(bytes([FEND]))
    for _ in range(1000):
        assert decoder.feed(b"\x55" * 97) == []
        assert decoder.buffered <= 2 * 103
    assert decoder.feed(bytes([FEND]) + encode_data(b"next")) == [Lost(OVERSIZE), b"next"]
    assert decoder.errors == Counter({OVERSIZE: 1})


@given(payloads, st.sampled_from([0, 1, 4, 5]))  # ports whose command byte has 0x80 and 0x20 clear
def test_smack_and_flexnet_frames_are_accepted_when_their_crc_holds(sent: list[bytes],
                                                                    port: int) -> None:
    stream = b"".join(smack_frame(p, port) + flex_frame(p, port) for p in sent)
    got, errors = decode_in_pieces(stream, [], port)
    assert got == [p for p in sent for _ in range(2)]
    assert not errors


@given(st.binary(min_size=1, max_size=200), st.data())
def test_a_damaged_smack_or_flexnet_frame_is_a_counted_crc_drop(payload: bytes,
                                                                data: st.DataObject) -> None:
    for make in (smack_frame, flex_frame):
        body = bytearray(stuffing.unescape(make(payload)[1:-1]) or b"")
        bit = data.draw(st.integers(8, len(body) * 8 - 1))  # not the command byte
        body[bit // 8] ^= 1 << (bit % 8)
        got, errors = decode_in_pieces(stuffing.encode(bytes(body)), [])
        assert got == [Lost(CRC)] and errors == Counter({CRC: 1})


def test_crc_check_values() -> None:
    assert crc_arc(b"123456789") == 0xBB3D  # CRC-16/ARC check value
    body = bytes([kiss.FLEX]) + b"123456789"
    assert crc_flex(body + crc_flex(body).to_bytes(2, "big")) == kiss.FLEX_RESIDUE


def test_other_ports_commands_and_errors_are_counted_and_decoding_resumes() -> None:
    """Damaged or cut frames are marked Lost where they were; frames only not for us are
    counted and leave no mark (nothing of ours was lost)."""
    decoder = KissDecoder(8, port=1)
    stream = (b"junk" + encode_data(b"first", 1)
              + encode_data(b"port 0")
              + encode_command(kiss.TXDELAY, b"\x32", 1)
              + kiss.EXIT_KISS
              + bytes([FEND, 0x10, FESC, 0x41, FEND])  # FESC followed by a plain byte
              + encode_data(b"123456789", 1)  # one byte over max_data
              + encode_data(bytes([FEND, FESC]), 1))
    assert decoder.feed(stream) == [Lost(GARBAGE), b"first", Lost(BAD_ESCAPE), Lost(OVERSIZE, 9),
                                    bytes([FEND, FESC])]
    assert decoder.errors == Counter({GARBAGE: 1, OTHER_PORT: 1, NOT_DATA: 2,
                                      BAD_ESCAPE: 1, OVERSIZE: 1})


def test_encoding_escapes_data_and_command_byte() -> None:
    assert encode_data(bytes([1, FEND, 2, FESC])) == bytes(
        [FEND, 0, 1, FESC, TFEND, 2, FESC, TFESC, FEND])
    assert encode_data(b"x", 12) == bytes([FEND, FESC, TFEND, 0x78, FEND])  # port 12: 0xC0
    assert encode_command(kiss.PERSISTENCE, b"\x3f", 2) == bytes([FEND, 0x22, 0x3F, FEND])
    assert bytes([FEND, 0xFF, FEND]) == kiss.EXIT_KISS
