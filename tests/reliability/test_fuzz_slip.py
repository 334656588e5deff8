"""The SLIP decoder on hostile line noise: it never raises, never grows, never lets noise through,
and marks every frame it throws away.

With `--long` the hypothesis test runs 20,000 examples and the noise streams are 40x longer.
"""

from __future__ import annotations

import random
import tracemalloc

from hypothesis import given
from hypothesis import strategies as st

from linkbridge.framing.crc16 import CrcChecked, append_crc
from linkbridge.framing.events import Lost
from linkbridge.framing.slip import END, OVERSIZE, SlipDecoder, encode
from linkbridge.wire.packet import packet_problem


@given(st.lists(st.binary(max_size=3000), max_size=20), st.integers(1, 2000), st.booleans())
def test_decoder_never_raises_and_stays_bounded(chunks: list[bytes], max_frame: int,
                                                crc: bool) -> None:
    slip = SlipDecoder(max_frame)
    decoder = CrcChecked(slip, slip.errors) if crc else slip
    for chunk in chunks:
        for frame in decoder.feed(chunk):
            assert isinstance(frame, Lost) or len(frame) <= max_frame
        assert slip.buffered <= 2 * max_frame


def noise(rng: random.Random, size: int, end_density: float) -> bytes:
    """Random bytes in which a fraction `end_density` of the bytes are END."""
    data = bytearray(rng.randbytes(size).replace(bytes([END]), b"\x55"))
    for index in rng.sample(range(size), int(size * end_density)):
        data[index] = END
    return bytes(data)


def test_memory_stays_flat_on_megabytes_without_a_frame_end(long_run: bool) -> None:
    rng = random.Random(1)
    megabytes = 400 if long_run else 10
    chunk = noise(rng, 1 << 20, 0.0)
    decoder = SlipDecoder(1500)
    decoder.feed(bytes([END]))
    tracemalloc.start()
    try:
        for _ in range(megabytes):
            for offset in range(0, len(chunk), 4096):
                decoder.feed(chunk[offset:offset + 4096])
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decoder.buffered <= 3000
    assert peak < 64 * 1024
    assert decoder.feed(bytes([END]) + encode(b"alive")) == [Lost(OVERSIZE), b"alive"]


def test_noise_never_reaches_the_tunnel_and_real_packets_survive(long_run: bool) -> None:
    """Packets with CRC interleaved with noise (seeded): only sent packets come out, and every
    frame thrown away is counted and marked where it was."""
    rng = random.Random(7)
    rounds = 40_000 if long_run else 1_000
    sent: list[bytes] = []
    stream = bytearray()
    for _ in range(rounds):
        stream += noise(rng, rng.randrange(0, 200), rng.choice((0.0, 0.004, 0.06)))
        body = rng.randbytes(rng.randrange(0, 300))
        packet = bytes([0x45, 0]) + (len(body) + 20).to_bytes(2, "big") + bytes(16) + body
        sent.append(packet)
        stream += encode(append_crc(packet))
    slip = SlipDecoder(1502)
    decoder = CrcChecked(slip, slip.errors)
    delivered: list[bytes] = []
    marks = 0
    position = 0
    while position < len(stream):
        size = rng.randrange(1, 2048)
        for frame in decoder.feed(bytes(stream[position:position + size])):
            if isinstance(frame, Lost):
                marks += 1
            elif packet_problem(frame) is None:
                delivered.append(frame)
        position += size
    assert delivered == sent
    assert marks == sum(slip.errors.values()) > 0
