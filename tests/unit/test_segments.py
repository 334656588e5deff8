"""GSO runs and GRO splits: whatever the packets, what the peer gets is exactly what was sent."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from linkbridge.wire.segments import gso_runs, split_run

PACKETS = st.lists(st.sampled_from([0, 1, 20, 84, 100, 1472]).flatmap(
    lambda size: st.binary(min_size=size, max_size=size)), max_size=300)


@given(PACKETS, st.integers(1, 70), st.integers(1472, 65507))
def test_runs_keep_every_packet_in_order_and_obey_the_gso_rules(
        packets: list[bytes], max_segments: int, max_bytes: int) -> None:
    runs = list(gso_runs(packets, max_segments, max_bytes))
    assert [packet for _size, run in runs for packet in run] == packets
    for size, run in runs:
        assert run and len(run) <= max_segments
        assert len(run) == 1 or sum(map(len, run)) <= max_bytes
        assert all(len(packet) == size for packet in run[:-1])
        assert len(run[-1]) <= size
        assert split_run(b"".join(run), size) == run


def test_equal_packets_make_full_runs_and_a_short_one_ends_a_run() -> None:
    packets = [b"a" * 100] * 130 + [b"b" * 40, b"c" * 100]
    runs = list(gso_runs(packets))
    assert [(size, len(run)) for size, run in runs] == [(100, 64), (100, 64), (100, 3), (100, 1)]
    assert runs[2][1][-1] == b"b" * 40


def test_byte_limit_and_empty_packets_split_runs() -> None:
    runs = list(gso_runs([b"x" * 1000] * 5 + [b"", b"y"], max_bytes=2500))
    assert [(size, len(run)) for size, run in runs] == [(1000, 2), (1000, 2), (1000, 1), (0, 1),
                                                        (1, 1)]


def test_split_run_cuts_at_the_segment_size() -> None:
    assert split_run(b"abcdefg", 3) == [b"abc", b"def", b"g"]
    assert split_run(b"abc", 3) == [b"abc"]
    assert split_run(b"", 0) == [b""]
