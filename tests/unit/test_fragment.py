"""Link fragmentation and reassembly: any split, any order, duplicates, losses, timeouts, bounds."""

from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkbridge.datapath.fragmenting import FragmentingEndpoint
from linkbridge.errors import ConfigError
from linkbridge.testing import memory_pair
from linkbridge.wire.fragment import (
    HEADER_SIZE,
    ID_SPACE,
    MAX_FRAGMENTS,
    Drop,
    Fragmenter,
    FragmentHeader,
    Reassembler,
    check_frame_size,
    is_fragment,
    max_packet_size,
    parse_header,
)
from linkbridge.wire.stack import fragment_frame_size

packets = st.binary(min_size=1, max_size=4000)
frame_sizes = st.integers(HEADER_SIZE + 1, 1500)


def fragments(packet_id: int, pieces: list[bytes]) -> list[bytes]:
    """Frames for `pieces` of one packet, built by hand (not by Fragmenter)."""
    return [FragmentHeader(packet_id, index, index == len(pieces) - 1).pack() + piece
            for index, piece in enumerate(pieces)]


@st.composite
def split_packet(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    """A packet and an arbitrary split of it into 1..MAX_FRAGMENTS non-empty pieces."""
    packet = draw(packets)
    cuts = draw(st.lists(st.integers(1, len(packet) - 1), unique=True,
                         max_size=MAX_FRAGMENTS - 1)) if len(packet) > 1 else []
    bounds = [0, *sorted(cuts), len(packet)]
    return packet, [packet[a:b] for a, b in itertools.pairwise(bounds)]


def counting(drops: Counter[str]) -> Drop:
    return lambda reason: drops.update([reason])


def reassemble(frames: list[bytes], reassembler: Reassembler, now: float = 0.0) -> list[bytes]:
    return [p for frame in frames if (p := reassembler.feed(frame, now)) is not None]


def test_header_wire_layout() -> None:
    header = FragmentHeader(packet_id=0x12345, index=7, last=True)
    assert header.pack() == bytes.fromhex("f2468b07")  # 1111 | 0x12345 | 1 | 7
    assert FragmentHeader(1, 2, False).pack() == bytes.fromhex("f0000202")
    assert len(header.pack()) == HEADER_SIZE
    assert parse_header(header.pack() + b"x") == header
    assert parse_header(header.pack()) is None  # a header without data
    assert not is_fragment(b"\x45abc") and not is_fragment(b"\x60abc") and not is_fragment(b"")


@given(st.integers(0, ID_SPACE - 1), st.integers(0, 255), st.booleans())
def test_header_round_trip(packet_id: int, index: int, last: bool) -> None:
    header = FragmentHeader(packet_id, index, last)
    assert parse_header(header.pack() + b"\0") == header


@given(packets, frame_sizes)
def test_fragmenter_output_round_trips(packet: bytes, frame_size: int) -> None:
    drops: Counter[str] = Counter()
    frames = Fragmenter(frame_size, counting(drops)).split(packet)
    if len(packet) > max_packet_size(frame_size):
        assert frames == [] and drops == {"fragment_too_big": 1}
        return
    assert all(len(frame) <= frame_size for frame in frames)
    if len(packet) <= frame_size and not is_fragment(packet):
        assert frames == [packet]  # fits: sent whole, no header
    assert reassemble(frames, Reassembler(counting(drops))) == [packet]
    assert not drops


@given(split_packet(), st.randoms(use_true_random=False), st.data())
def test_any_split_any_order_with_duplicates(
    case: tuple[bytes, list[bytes]], rng: random.Random, data: st.DataObject
) -> None:
    packet, pieces = case
    frames = fragments(99, pieces)
    duplicated = data.draw(st.lists(st.sampled_from(frames), max_size=5))
    arriving = frames + duplicated
    rng.shuffle(arriving)
    drops: Counter[str] = Counter()
    reassembler = Reassembler(counting(drops))
    assert reassemble(arriving, reassembler) == [packet]
    assert drops == ({"fragment_duplicate": len(duplicated)} if duplicated else {})
    assert reassembler.pending == 0


@given(st.lists(split_packet(), min_size=2, max_size=6), st.randoms(use_true_random=False))
def test_interleaved_packets_all_arrive(cases: list[tuple[bytes, list[bytes]]],
                                       rng: random.Random) -> None:
    arriving = [frame for number, (_, pieces) in enumerate(cases)
                for frame in fragments(number, pieces)]
    rng.shuffle(arriving)
    drops: Counter[str] = Counter()
    delivered = reassemble(arriving, Reassembler(counting(drops)))
    assert sorted(delivered) == sorted(packet for packet, _ in cases)
    assert not drops


@given(split_packet().filter(lambda case: len(case[1]) > 1), st.data())
def test_a_missing_fragment_loses_the_whole_packet_after_the_timeout(
    case: tuple[bytes, list[bytes]], data: st.DataObject
) -> None:
    _, pieces = case
    frames = fragments(5, pieces)
    lost = data.draw(st.integers(0, len(frames) - 1))
    drops: Counter[str] = Counter()
    reassembler = Reassembler(counting(drops), timeout=2.0)
    assert reassemble(frames[:lost] + frames[lost + 1:], reassembler, now=10.0) == []
    reassembler.expire(11.9)
    assert reassembler.pending == 1 and not drops
    reassembler.expire(12.0)
    assert reassembler.pending == 0
    assert drops == {"reassembly_timeout": 1}
    # the lost fragment arriving late starts a new partial packet that also times out
    assert reassembler.feed(frames[lost], 12.5) is None
    reassembler.expire(20.0)
    assert drops == {"reassembly_timeout": 2}


def test_timeout_counts_from_the_first_fragment() -> None:
    drops: Counter[str] = Counter()
    reassembler = Reassembler(counting(drops), timeout=1.0)
    frames = fragments(1, [b"ab", b"cd", b"ef"])
    assert reassembler.feed(frames[0], 0.0) is None
    assert reassembler.feed(frames[1], 0.9) is None
    assert reassembler.feed(frames[2], 1.0) is None  # too late: expired before it was added
    assert drops == {"reassembly_timeout": 1}


@given(st.integers(1, 20), st.integers(0, 40))
def test_reassembly_buffer_is_bounded(max_pending: int, started: int) -> None:
    drops: Counter[str] = Counter()
    reassembler = Reassembler(counting(drops), max_pending=max_pending)
    for packet_id in range(started):
        reassembler.feed(fragments(packet_id, [b"first", b"never sent"])[0], 0.0)
        assert reassembler.pending <= max_pending
    assert drops["reassembly_overflow"] == max(0, started - max_pending)
    # the oldest were evicted: the newest packet can still complete
    if started:
        last = fragments(started - 1, [b"first", b"second"])[1]
        assert reassembler.feed(last, 0.0) == b"firstsecond"


def test_late_duplicate_of_a_delivered_packet_is_counted_not_buffered() -> None:
    drops: Counter[str] = Counter()
    reassembler = Reassembler(counting(drops), timeout=1.0)
    frames = fragments(3, [b"one", b"two"])
    assert reassemble(frames, reassembler) == [b"onetwo"]
    assert reassembler.feed(frames[0], 0.5) is None
    assert reassembler.pending == 0 and drops == {"fragment_duplicate": 1}
    assert reassemble(frames, reassembler, now=5.0) == [b"onetwo"]  # id reusable later


def test_oversize_packet_is_dropped() -> None:
    drops: Counter[str] = Counter()
    reassembler = Reassembler(counting(drops), max_size=10)
    frames = fragments(3, [b"123456", b"7890", b"X"])
    assert reassemble(frames, reassembler) == []
    assert drops == {"reassembly_oversize": 1}
    assert reassembler.pending == 0


@pytest.mark.parametrize(
    ("frames", "reason"),
    [
        ([b"\xf0"], "fragment_bad_header"),
        ([b"\xf0\0\0\0"], "fragment_bad_header"),  # header without data
        # two different "last" fragments
        ([FragmentHeader(1, 2, True).pack() + b"a", FragmentHeader(1, 3, True).pack() + b"b"],
         "fragment_mismatch"),
        # a fragment after the last one
        ([FragmentHeader(1, 1, True).pack() + b"a", FragmentHeader(1, 4, False).pack() + b"b"],
         "fragment_mismatch"),
        # a last fragment before pieces already received
        ([FragmentHeader(1, 4, False).pack() + b"a", FragmentHeader(1, 2, True).pack() + b"b"],
         "fragment_mismatch"),
    ],
)
def test_bad_fragments_are_counted(frames: list[bytes], reason: str) -> None:
    drops: Counter[str] = Counter()
    assert reassemble(frames, Reassembler(counting(drops))) == []
    assert drops == {reason: 1}


@given(st.lists(st.binary(max_size=80), max_size=50))
def test_arbitrary_frames_never_raise(frames: list[bytes]) -> None:
    drops: Counter[str] = Counter()
    reassembler = Reassembler(counting(drops), max_pending=4)
    for time, frame in enumerate(frames):
        result = reassembler.feed(frame, time / 10)
        assert result is None or isinstance(result, bytes)
        assert reassembler.pending <= 4


def test_whole_packets_starting_with_the_marker_are_escaped() -> None:
    drops: Counter[str] = Counter()
    frames = Fragmenter(64, counting(drops)).split(b"\xf5 not an IP packet")
    assert len(frames) == 1 and frames[0] != b"\xf5 not an IP packet"
    assert reassemble(frames, Reassembler(counting(drops))) == [b"\xf5 not an IP packet"]


def test_packet_ids_wrap() -> None:
    fragmenter = Fragmenter(8, counting(Counter()), first_id=ID_SPACE - 1)
    ids = [parse_header(fragmenter.split(bytes(10))[0]) for _ in range(2)]
    assert [header.packet_id for header in ids if header] == [ID_SPACE - 1, 0]


def test_frame_size_limits() -> None:
    with pytest.raises(ConfigError, match="at least one"):
        check_frame_size(HEADER_SIZE, 100)
    with pytest.raises(ConfigError, match="more than 256 fragments"):
        check_frame_size(10, 6 * 256 + 1)
    check_frame_size(10, 6 * 256)
    assert max_packet_size(64) == 60 * 256
    assert max_packet_size(1500) == 65535


@pytest.mark.parametrize(
    ("mode", "tunnel_mtu", "link_mtu", "expected"),
    [
        ("auto", 1280, 64, 64),
        ("auto", 1280, 1280, None),
        ("auto", 1280, None, None),
        ("always", 1280, 1500, 1500),
        ("always", 1280, None, 0),  # reassemble only
        ("never", 1280, 64, None),
    ],
)
def test_when_the_layer_is_used(mode: str, tunnel_mtu: int, link_mtu: int | None,
                                expected: int | None) -> None:
    assert fragment_frame_size(mode, tunnel_mtu, link_mtu) == expected


def test_layer_refuses_a_tunnel_mtu_it_cannot_carry() -> None:
    with pytest.raises(ConfigError, match="tunnel MTU 9000"):
        fragment_frame_size("auto", 9000, 20)


def test_endpoint_pair_carries_big_packets_and_expires_on_receive() -> None:
    link_a, link_b = memory_pair()
    clock = [0.0]
    side_a = FragmentingEndpoint(link_a, 64, timeout=1.0, clock=lambda: clock[0])
    side_b = FragmentingEndpoint(link_b, 64, timeout=1.0, clock=lambda: clock[0])
    packet = bytes(range(256)) * 5
    side_a.send(packet)
    assert len(link_b.inbox) == -(-len(packet) // 60)
    assert side_b.receive(0.1) == [packet]
    side_b.send(b"\x45small")
    assert side_a.receive(0.1) == [b"\x45small"]
    side_a.send(packet)
    link_b.inbox.pop(3)  # one fragment lost on the link
    assert side_b.receive(0.1) == []
    clock[0] = 1.5
    assert side_b.receive(0.1) == []  # nothing arrives; the overdue packet expires anyway
    stats = side_b.counters.as_dict()
    assert stats["drops"] == {"reassembly_timeout": 1}
    assert stats["rx_packets"] == 1
    assert isinstance(stats["frames"], dict) and stats["frames"]["tx_packets"] == 1
    assert all(len(frame) <= 64 for frame in link_a.sent + link_b.sent)
