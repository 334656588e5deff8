"""The pure parts of the UART relay: line pacing and noise placed only between SLIP frames."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from linkbridge.framing.slip import SlipDecoder, encode
from linkbridge.lab.uart import CATCH_UP, LinePacer, NoiseInjector


def test_back_to_back_bytes_arrive_at_exactly_the_line_rate() -> None:
    pacer = LinePacer(rate=11520.0)
    release = pacer.release_time(now=10.0, size=46, waiting=False)
    for _ in range(249):
        release = pacer.release_time(now=release + 0.0005, size=46, waiting=True)  # late a bit
    assert abs(release - (10.0 + 250 * 46 / 11520)) < 1e-9


def test_an_idle_line_starts_when_bytes_come_and_catch_up_is_bounded() -> None:
    pacer = LinePacer(rate=1000.0)
    assert pacer.release_time(now=5.0, size=10, waiting=False) == 5.01
    assert pacer.release_time(now=9.0, size=10, waiting=False) == 9.01  # idle in between
    assert pacer.release_time(now=12.0, size=10, waiting=True) == 12.0 - CATCH_UP + 0.01


@given(st.lists(st.binary(min_size=1, max_size=60), max_size=20),
       st.lists(st.integers(1, 200), max_size=10), st.integers(0, 2**32))
def test_noise_goes_only_between_frames(packets: list[bytes], cuts: list[int],
                                        seed: int) -> None:
    stream = b"".join(map(encode, packets))
    injector = NoiseInjector(random.Random(seed), probability=0.7, max_length=8)
    noisy = b""
    added = 0
    position = 0
    for size in [*cuts, len(stream)]:
        chunk, count = injector.apply(stream[position:position + size])
        noisy += chunk
        added += count
        position += size
    assert len(noisy) == len(stream) + added
    frames = SlipDecoder(64).feed(noisy)
    remaining = iter(frames)
    assert all(any(frame == packet for frame in remaining) for packet in packets)


def test_noise_is_seeded_and_lands_at_frame_gaps() -> None:
    stream = encode(b"one") + encode(b"two")
    first = NoiseInjector(random.Random(3), probability=1.0).apply(stream)
    again = NoiseInjector(random.Random(3), probability=1.0).apply(stream)
    assert first == again and first[1] > 0
    noisy = first[0]
    assert noisy.startswith(encode(b"one")) and noisy.endswith(encode(b"two"))
    assert noisy[len(encode(b"one")):-len(encode(b"two"))] != b""
