"""`auto`'s sequential frames (wire/compress/lbhc.py): 3 bytes of header for an IPv4 TCP segment
that follows the ones before it, decoded from the last packet the decompressor rebuilt by the
IP ID's two low bits. Boundaries, 32-bit wraparound, reordering within the window, loss of the
reference, damage; and that a wrong reading never yields a packet."""

from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkbridge.wire import drops
from linkbridge.wire.compress import AUTO, codec_pair
from linkbridge.wire.compress.lbhc import (
    CO,
    FEEDBACK,
    IR,
    MAX_STRIDE,
    MIN_STRIDE,
    SEQUENTIAL,
    SEQUENTIAL_ACK,
    SEQUENTIAL_CIDS,
    TRIES,
    WINDOW,
    Compressor,
    Decompressor,
)
from tests.helpers.ip_packets import tcp, timestamps

M32 = 0xFFFFFFFF


def pair() -> tuple[Compressor, Decompressor, Counter[str]]:
    counted: Counter[str] = Counter()
    compressor, decompressor = codec_pair(AUTO, lambda reason: counted.update([reason]))
    assert isinstance(compressor, Compressor) and isinstance(decompressor, Decompressor)
    return compressor, decompressor, counted


def kind(frame: bytes) -> int:
    return frame[0] & 0xF0


def bulk(count: int, *, seq: int = 1000, ip_id: int = 1, stride: int = 60, ack: int = 7000,
         sport: int = 40000, seed: int = 0, acked: int = 0) -> list[bytes]:
    """A bulk flow's data segments: each `stride` bytes on, the IP ID one on, the ACK number
    `acked` on every second one (0: a one-way transfer)."""
    rng = random.Random(seed)
    return [tcp(seq=(seq + i * stride) & M32, ack=(ack + i // 2 * acked) & M32,
                payload=rng.randbytes(stride), ip_id=(ip_id + i) & 0xFFFF, sport=sport)
            for i in range(count)]


def frames_of(compressor: Compressor, packets: list[bytes]) -> list[bytes]:
    return [compressor.compress(packet) for packet in packets]


def test_a_bulk_flow_goes_as_three_byte_headers_after_the_window_fills() -> None:
    compressor, decompressor, counted = pair()
    packets = bulk(40)
    frames = frames_of(compressor, packets)
    assert [kind(f) for f in frames[:WINDOW]] == [IR] + [CO] * (WINDOW - 1)
    assert all(kind(f) == SEQUENTIAL and len(f) == 3 + 60 for f in frames[WINDOW:])
    assert [decompressor.feed(f, 0.0) for f in frames] == packets
    assert not counted


@pytest.mark.parametrize(("stride", "sequential"), [
    (0, True), (1, True), (MIN_STRIDE, True), (MAX_STRIDE, True), (MAX_STRIDE + 1, False)])
def test_payload_length_bounds(stride: int, sequential: bool) -> None:
    compressor, decompressor, _counted = pair()
    packets = bulk(WINDOW + 2, stride=stride)
    frames = frames_of(compressor, packets)
    assert (kind(frames[-1]) == SEQUENTIAL) is sequential
    assert [decompressor.feed(f, 0.0) for f in frames] == packets


def test_only_the_first_contexts_send_sequential_frames() -> None:
    compressor, decompressor, _counted = pair()
    flows = [bulk(WINDOW + 2, sport=41000 + n) for n in range(SEQUENTIAL_CIDS + 1)]
    last_frames = []
    for packets in flows:  # one flow after the other: contexts 0, 1, ...
        frames = frames_of(compressor, packets)
        assert [decompressor.feed(f, 0.0) for f in frames] == packets
        last_frames.append(frames[-1])
    assert [kind(f) for f in last_frames] == [SEQUENTIAL] * SEQUENTIAL_CIDS + [CO]


@pytest.mark.parametrize("change", [
    {"ack": 7001}, {"flags": 0x50}, {"window": 9}, {"options": timestamps(1, 2)}, {"size": 61},
    {"ip_id": 1}, {"seq": -120}, {"ttl": 9}], ids=str)
def test_a_segment_that_does_not_follow_goes_long_and_the_window_refills(
        change: dict[str, object]) -> None:
    compressor, decompressor, counted = pair()
    fields: dict[str, object] = {"ack": 7000, "flags": 0x10, "window": 502, "options": b"",
                                 "ttl": 64}
    packets, seq, ip_id = [], 1000, 1
    for i in range(3 * WINDOW):
        size = 60
        if i == WINDOW + 1:  # the odd one; those after it keep its fields
            fields.update({k: v for k, v in change.items() if k in fields})
            size = int(change.get("size", 60))  # type: ignore[call-overload]
            seq += int(change.get("seq", 0))  # type: ignore[call-overload]
            ip_id += int(change.get("ip_id", 0))  # type: ignore[call-overload]
        packets.append(tcp(seq=seq, payload=bytes([i]) * size, ip_id=ip_id,
                           **fields))  # type: ignore[arg-type]
        seq, ip_id = seq + size, ip_id + 1
    frames = frames_of(compressor, packets)
    kinds = [kind(f) for f in frames]
    assert kinds[WINDOW] == SEQUENTIAL and kinds[WINDOW + 1] != SEQUENTIAL
    assert kinds[-1] == SEQUENTIAL
    assert [decompressor.feed(f, 0.0) for f in frames] == packets
    assert not counted


@pytest.mark.parametrize("start", [M32 - 60 * 6 + 1, M32 - 60 * 6 + 30, M32 - 1, M32])
def test_sequence_numbers_wrap_around_2_to_the_32(start: int) -> None:
    compressor, decompressor, counted = pair()
    packets = bulk(24, seq=start, ip_id=0xFFFF - 7)  # the IP ID wraps too
    frames = frames_of(compressor, packets)
    assert sum(kind(f) == SEQUENTIAL for f in frames) == 24 - WINDOW
    assert [decompressor.feed(f, 0.0) for f in frames] == packets
    for lost in range(1, 2 * WINDOW):  # and across the wrap, after losses
        compressor, decompressor, counted = pair()
        frames = frames_of(compressor, packets)
        for frame in frames[:WINDOW + 1]:
            decompressor.feed(frame, 0.0)
        assert decompressor.feed(frames[WINDOW + 1 + lost], 0.0) == packets[WINDOW + 1 + lost]
    assert not counted


@pytest.mark.parametrize("lost", range(1, 2 * WINDOW))
def test_losing_the_reference_and_what_follows_costs_only_the_lost(lost: int) -> None:
    """Up to WINDOW - 1 lost frames the compressor made sure of; up to 7 the decompressor
    reads on (the flow did not change meanwhile)."""
    compressor, decompressor, counted = pair()
    packets = bulk(2 * WINDOW + lost + 3)
    frames = frames_of(compressor, packets)
    delivered = [decompressor.feed(f, 0.0) for i, f in enumerate(frames)
                 if not 2 * WINDOW <= i < 2 * WINDOW + lost]
    assert delivered == packets[:2 * WINDOW] + packets[2 * WINDOW + lost:]
    assert not counted


def test_a_longer_loss_fails_the_check_and_feedback_brings_a_full_header() -> None:
    compressor, decompressor, counted = pair()
    packets = bulk(60)
    frames = frames_of(compressor, packets[:30])
    for frame in frames[:10]:
        assert decompressor.feed(frame, 0.0) is not None
    assert decompressor.feed(frames[10 + 16], 1.0) is None  # 16 lost: beyond the readings
    assert counted == {drops.COMPRESS_BAD_CHECKSUM: 1}
    feedback = decompressor.take_feedback()
    assert feedback == [bytes((FEEDBACK | 0,))]  # whatever the generation
    compressor.feedback(feedback[0])
    repaired = frames_of(compressor, packets[30:])
    assert kind(repaired[0]) == IR
    assert [decompressor.feed(f, 2.0) for f in repaired] == packets[30:]


@pytest.mark.parametrize("order", [(1, 0), (2, 0, 1), (3, 2, 1, 0), (0, 3, 1, 2), (1, 1, 0)])
def test_reordering_within_the_window_delivers_each_one(order: tuple[int, ...]) -> None:
    compressor, decompressor, counted = pair()
    packets = bulk(2 * WINDOW + len(order) + 2)
    frames = frames_of(compressor, packets)
    start = 2 * WINDOW
    for frame in frames[:start]:
        decompressor.feed(frame, 0.0)
    shuffled = [decompressor.feed(frames[start + i], 0.0) for i in order]
    assert shuffled == [packets[start + i] for i in order]
    rest = [decompressor.feed(f, 0.0) for f in frames[start + len(set(order)):]]
    assert rest == packets[start + len(set(order)):]
    assert not counted


def test_a_wrong_reading_never_yields_a_packet() -> None:
    """Every frame of a flow fed to a decompressor whose last packet is any other one of the
    flow, 40 back to 40 on: exactly the sent packet, or a counted drop."""
    packets = bulk(120, seq=M32 - 60 * 50, ip_id=0xFFFF - 30, stride=MIN_STRIDE + 58)
    compressor, _decompressor, _counted = pair()
    frames = frames_of(compressor, packets)
    for held, sent in itertools.product(range(40, 80), range(WINDOW, 120)):
        _compressor, decompressor, _counted = pair()
        decompressor.feed(compressor_ir(packets[held]), 0.0)
        result = decompressor.feed(frames[sent], 0.0)
        if kind(frames[sent]) != SEQUENTIAL:
            continue
        reachable = sent - held in {first + more for first in range(1, WINDOW + 1)
                                    for more in TRIES}
        assert result == (packets[sent] if reachable else None), (held, sent)


def compressor_ir(packet: bytes) -> bytes:
    """A full header of `packet` in context 0, as a fresh compressor sends it."""
    frame = Compressor().compress(packet)
    assert kind(frame) == IR
    return frame


@pytest.mark.parametrize(("acked", "frame_kind"), [(0, SEQUENTIAL), (30, SEQUENTIAL_ACK)])
def test_every_byte_of_damage_to_a_sequential_frame_is_caught(acked: int,
                                                              frame_kind: int) -> None:
    """Each byte of a sequential frame set to each other value: a counted drop, or (a first
    byte of another layer's type) the frame passed up as it is, never a rebuilt packet."""
    compressor, decompressor, _counted = pair()
    packets = bulk(WINDOW + 2, stride=20, acked=acked)
    frames = frames_of(compressor, packets)
    for frame in frames[:-1]:
        decompressor.feed(frame, 0.0)
    frame = frames[-1]
    assert kind(frame) == frame_kind
    for index, value in itertools.product(range(len(frame)), range(256)):
        if value == frame[index]:
            continue
        damaged = frame[:index] + bytes((value,)) + frame[index + 1:]
        result = decompressor.feed(damaged, 0.0)
        if index == 0 and kind(damaged) not in (SEQUENTIAL, SEQUENTIAL_ACK, CO, IR):
            assert result == damaged, hex(value)
        else:
            assert result is None, (index, value)


def test_a_lost_full_header_stops_sequential_frames_until_a_new_one() -> None:
    """The decompressor holds context 0 of an old flow; the new flow's full header is lost.
    Its compressed frames say so (another generation), and the sequential ones that follow are
    not read against the old flow's packet."""
    compressor, decompressor, counted = pair()
    old = bulk(WINDOW + 2, sport=1)
    assert [decompressor.feed(f, 0.0) for f in frames_of(compressor, old)] == old
    compressor.feedback(bytes((FEEDBACK | 0,)))  # the old flow's context starts over
    new = bulk(3 * WINDOW, seq=5000, ip_id=old_id(old) + 1, sport=1)
    frames = frames_of(compressor, new)
    assert kind(frames[0]) == IR
    results = [decompressor.feed(f, 0.0) for f in frames[1:]]  # the full header lost
    assert results == [None] * len(results)
    assert counted[drops.COMPRESS_NO_CONTEXT] == len(results)
    assert bytes((FEEDBACK | 0,)) in decompressor.take_feedback()


def old_id(packets: list[bytes]) -> int:
    return int.from_bytes(packets[-1][4:6], "big")


def test_sequential_frames_too_short_are_counted() -> None:
    _compressor, decompressor, counted = pair()
    for frame in (bytes((SEQUENTIAL,)), bytes((SEQUENTIAL, 1)), bytes((SEQUENTIAL_ACK, 1, 2))):
        assert decompressor.feed(frame, 0.0) is None
    assert counted == {drops.COMPRESS_TRUNCATED: 3}
    assert decompressor.feed(bytes((SEQUENTIAL | 5, 1, 2, 3, 4)), 0.0) is None
    assert counted[drops.COMPRESS_NO_CONTEXT] == 1


FATES = st.lists(st.sampled_from(["pass"] * 5 + ["lose", "lose", "dup", "late", "late2"]),
                 min_size=1, max_size=120)


@settings(max_examples=120, deadline=None, derandomize=True)
@given(st.integers(0, M32), st.integers(0, 0xFFFF), st.integers(MIN_STRIDE - 1, 300), FATES,
       st.integers(0, 2**32))
def test_bulk_flows_over_a_bad_channel_deliver_only_sent_packets(
        seq: int, ip_id: int, stride: int, fates: list[str], seed: int) -> None:
    """Loss, duplication and reordering (late by one or two), around the 2**32 wrap and the
    IP ID's; now and then a segment that breaks the line (an ACK, PSH, a resend). A frame
    reordered across such a one is read against a packet off its line, which the check
    catches as it catches a random 16-bit value (docs/compression.md): about one such reading
    in 65536 passes, so the examples are the same every run (derandomized), not luck."""
    rng = random.Random(seed)
    packets, at, ack = [], seq, 7000
    for i in range(150):
        flags, size = 0x10, stride
        twist = rng.random()
        if twist < 0.04:
            ack += 1
        elif twist < 0.07:
            flags = 0x18
        elif twist < 0.09:
            at -= stride * rng.randrange(1, 6)  # a resend
        packets.append(tcp(seq=at & M32, ack=ack, flags=flags, payload=rng.randbytes(size),
                           ip_id=(ip_id + i) & 0xFFFF))
        at += size
    compressor, decompressor, _counted = pair()
    sent, held, clock = set(packets), [], 0.0
    for i, packet in enumerate(packets):
        frame = compressor.compress(packet)
        fate = fates[i % len(fates)]
        arriving = {"pass": [frame], "dup": [frame, frame]}.get(fate, [])
        if fate.startswith("late"):
            held.append((i + int(fate[-1]) if fate[-1].isdigit() else i + 1, frame))
        arriving += [f for due, f in held if due <= i]
        held = [(due, f) for due, f in held if due > i]
        for each in arriving:
            clock += 0.01
            result = decompressor.feed(each, clock)
            assert result is None or result in sent
            for feedback in decompressor.take_feedback():
                compressor.feedback(feedback)


def test_push_flags_travel_in_sequential_frames() -> None:
    """Linux sets PSH on the last segment of each write: every 5th here, as a 300-byte write
    in 60-byte segments gives."""
    compressor, decompressor, counted = pair()
    packets = [tcp(seq=1 + 60 * i, payload=bytes(60), ip_id=i, flags=0x18 if i % 5 == 4
                   else 0x10) for i in range(500)]
    frames = frames_of(compressor, packets)
    assert [decompressor.feed(f, 0.0) for f in frames] == packets
    assert all(kind(f) == SEQUENTIAL and len(f) == 63 for f in frames[WINDOW:])
    assert not counted


@pytest.mark.parametrize(("acked", "stride"), [(1, 48), (96, 48), (120, 60), (127, 0), (60, 0)])
def test_a_moving_ack_goes_as_its_low_byte(acked: int, stride: int) -> None:
    """Data both ways (the ACK moving every second segment) and pure ACKs (stride 0): 4 bytes
    of header, the ACK number read from its low byte; across the 2**32 wrap too."""
    for ack in (7000, M32 - 3 * acked):
        compressor, decompressor, counted = pair()
        packets = bulk(40, stride=stride, ack=ack, acked=acked)
        frames = frames_of(compressor, packets)
        assert all(kind(f) == SEQUENTIAL_ACK and len(f) == 4 + stride
                   for f in frames[WINDOW:]), [kind(f) for f in frames]
        assert [decompressor.feed(f, 0.0) for f in frames] == packets
        assert not counted


def test_an_ack_further_than_its_low_byte_reaches_goes_long() -> None:
    compressor, decompressor, counted = pair()
    packets = bulk(WINDOW + 1) + bulk(2 * WINDOW, seq=1000 + 60 * (WINDOW + 1), ip_id=WINDOW + 2,
                                       ack=7000 + 256)
    frames = frames_of(compressor, packets)
    kinds = [kind(f) for f in frames]
    assert kinds[WINDOW] == SEQUENTIAL and kinds[WINDOW + 1] == CO
    assert kinds[-1] == SEQUENTIAL  # the window holds the new ACK number alone again
    assert SEQUENTIAL_ACK not in kinds[WINDOW + 1:2 * WINDOW + 1]
    assert [decompressor.feed(f, 0.0) for f in frames] == packets
    assert not counted


@pytest.mark.parametrize("lost", range(1, WINDOW))
def test_losing_frames_that_moved_the_ack_costs_only_them(lost: int) -> None:
    compressor, decompressor, counted = pair()
    packets = bulk(3 * WINDOW + lost, acked=48, stride=48)
    frames = frames_of(compressor, packets)
    kept = [i for i in range(len(frames)) if not 2 * WINDOW <= i < 2 * WINDOW + lost]
    assert [decompressor.feed(frames[i], 0.0) for i in kept] == [packets[i] for i in kept]
    assert not counted


def test_pure_acks_read_once_and_a_wrong_reference_is_a_drop() -> None:
    """Without payload the readings would differ in the IP ID alone: only the first is tried,
    and a decompressor whose last packet is further back than the window drops the frame."""
    compressor, decompressor, counted = pair()
    packets = bulk(30, stride=0, acked=60)
    frames = frames_of(compressor, packets)
    for frame in frames[:10]:
        decompressor.feed(frame, 0.0)
    assert decompressor.feed(frames[10 + WINDOW], 0.0) is None  # WINDOW lost: out of reach
    assert counted == {drops.COMPRESS_BAD_CHECKSUM: 1}


@pytest.mark.parametrize("jump", [1 << 15, 36604, 0xFFFF - WINDOW])
def test_the_ip_id_may_jump_after_the_full_header(jump: int) -> None:
    """Linux sends a SYN-ACK with IP ID 0 and counts the connection's packets from elsewhere:
    the packets after the jump are the decompressor's last ones, not late ones."""
    compressor, decompressor, counted = pair()
    syn_ack = tcp(seq=999, ack=7000, flags=0x12, ip_id=0)
    packets = [syn_ack, *bulk(3 * WINDOW, ip_id=jump, stride=0, acked=48)]
    frames = frames_of(compressor, packets)
    assert kind(frames[-1]) == SEQUENTIAL_ACK
    assert [decompressor.feed(f, 0.0) for f in frames] == packets
    assert not counted


def test_a_fin_after_a_long_run_of_sequential_frames_is_no_full_header() -> None:
    """Sequential frames do not use up the reference: the FIN at the end of a 60 KB transfer
    goes as a compressed frame (its sequence number 60 KB past the reference's)."""
    compressor, decompressor, counted = pair()
    packets = bulk(1000)
    fin = tcp(seq=1000 + 60 * 1000, ack=7000, flags=0x11, ip_id=1001)
    frames = frames_of(compressor, [*packets, fin])
    assert kind(frames[-1]) == CO and len(frames[-1]) < 16
    assert [decompressor.feed(f, 0.0) for f in frames] == [*packets, fin]
    assert not counted
