"""`--compress vj` (wire/compress/vj.py): RFC 1144 as the kernel's cslip frames it, two
endpoints in memory; the decompressor never delivers a packet that was not sent."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkbridge.wire import drops
from linkbridge.wire.compress import VJ, codec_pair
from linkbridge.wire.compress.sums import pseudo_sum, transport_valid
from linkbridge.wire.compress.vj import (
    NEW_C,
    NEW_I,
    SPECIAL_D,
    TCP_PUSH,
    TYPE_COMPRESSED,
    VjCompressor,
    VjDecompressor,
)
from tests.helpers.ip_packets import B4, echo, tcp, timestamps, udp
from tests.helpers.packet_streams import VJ_KINDS, Channel, streams


def pair() -> tuple[VjCompressor, VjDecompressor, Counter[str]]:
    counted: Counter[str] = Counter()
    compressor, decompressor = codec_pair(VJ, lambda reason: counted.update([reason]))
    assert isinstance(compressor, VjCompressor) and isinstance(decompressor, VjDecompressor)
    return compressor, decompressor, counted


def bulk(count: int, flows: int = 1, mss: int = 48) -> list[bytes]:
    """A bulk transfer's data segments, `flows` connections interleaved."""
    return [tcp(sport=30000 + i % flows, seq=1 + mss * (i // flows), ack=99,
                payload=bytes([i % 251]) * mss, ip_id=i // flows + 1, flags=0x18)
            for i in range(count)]


def test_bulk_data_compresses_to_three_bytes_of_header() -> None:
    compressor, decompressor, counted = pair()
    frames = [compressor.compress(packet) for packet in bulk(50)]
    assert frames[0][0] >> 4 == 0x7 and frames[0][9] == 0  # uncompressed, slot 0
    # the uncompressed frame named slot 0, so no connection number until it changes
    assert frames[1][0] == TYPE_COMPRESSED | TCP_PUSH | SPECIAL_D
    assert {len(frame) - 48 for frame in frames[1:]} == {3}  # type, checksum
    assert [decompressor.feed(frame) for frame in frames] == bulk(50)
    assert not counted


def test_without_loss_every_packet_arrives_and_90_percent_compressed() -> None:
    packets = bulk(2000, flows=20)  # more connections than the 16 slots
    compressor, decompressor, counted = pair()
    channel = Channel(compressor, decompressor)
    assert channel.run(packets) == packets
    assert not counted
    packets = bulk(2000, flows=5)
    channel = Channel(*pair()[:2])
    assert channel.run(packets) == packets
    assert sum(frame[0] & TYPE_COMPRESSED != 0 for frame in channel.frames) >= 0.9 * 2000


@settings(max_examples=150, deadline=None)
@given(streams(VJ_KINDS))
def test_any_tcp_stream_round_trips(packets: list[bytes]) -> None:
    compressor, decompressor, counted = pair()
    assert Channel(compressor, decompressor).run(packets) == packets
    assert not counted


@settings(max_examples=150, deadline=None)
@given(streams(VJ_KINDS), st.lists(st.sampled_from(["pass"] * 6 + ["lose"]), min_size=1,
                                   max_size=200))
def test_loss_never_delivers_another_flow_or_payload(packets: list[bytes],
                                                      fates: list[str]) -> None:
    """RFC 1144's limit: numbers travel as deltas from the previous packet, so after a lost
    frame a later one can be rebuilt with an IP ID (which no checksum covers) or with
    sequence/ack numbers whose errors cancel in the 16-bit TCP checksum. What VJ guarantees
    on a line that loses frames but keeps their order, and this checks: every delivered packet
    has the flow, flags, length and payload of one that was sent, and a valid TCP checksum.
    (A frame without a connection number belongs to the previous frame's connection, so
    reordering, duplication or damage can pair it wrongly, caught only by the 16-bit checksum;
    `auto` has none of these limits and delivers only exact packets.)"""
    compressor, decompressor, _counted = pair()
    channel = Channel(compressor, decompressor, fate=lambda i: fates[i % len(fates)])
    sent = {delta_coded_fields_cleared(packet) for packet in packets}
    for packet in channel.run(packets):
        assert delta_coded_fields_cleared(packet) in sent
        assert tcp_checksum_holds(packet)


def test_damage_to_payload_or_checksum_is_always_caught() -> None:
    compressor, decompressor, _counted = pair()
    packets = bulk(3)
    frames = [compressor.compress(packet) for packet in packets]
    assert decompressor.feed(frames[0]) == packets[0]
    frame = frames[1]
    for index in range(1, len(frame)):  # the checksum (bytes 1-2) and the payload
        for flip in (0x01, 0x80, 0xFF):
            damaged = frame[:index] + bytes((frame[index] ^ flip,)) + frame[index + 1:]
            fresh = pair()[1]
            fresh.feed(frames[0])
            assert fresh.feed(damaged) is None, (index, flip)


def delta_coded_fields_cleared(packet: bytes) -> bytes:
    """`packet` without the IP ID, header checksum, TCP seq, ack, window, checksum, urgent."""
    ihl = (packet[0] & 0x0F) * 4
    return (packet[:4] + b"\0\0" + packet[6:10] + b"\0\0" + packet[12:ihl + 4] + bytes(8)
            + packet[ihl + 12:ihl + 14] + bytes(6) + packet[ihl + 20:])


def tcp_checksum_holds(packet: bytes) -> bool:
    ihl = (packet[0] & 0x0F) * 4
    pseudo = pseudo_sum(packet[12:20], 6, len(packet) - ihl)
    return transport_valid(pseudo, packet[ihl:])


def test_after_a_lost_frame_it_tosses_until_the_connection_is_named() -> None:
    compressor, decompressor, counted = pair()
    packets = bulk(6)
    frames = [compressor.compress(packet) for packet in packets]
    assert decompressor.feed(frames[0]) == packets[0]
    assert decompressor.feed(frames[1]) == packets[1]
    # frames[2] lost: frames[3] rebuilds with the wrong sequence number, caught by its checksum
    assert decompressor.feed(frames[3]) is None
    assert decompressor.feed(frames[4]) is None
    assert counted == {drops.COMPRESS_BAD_CHECKSUM: 1, drops.COMPRESS_TOSSED: 1}
    retransmission = compressor.compress(packets[4])  # nothing changed: goes uncompressed
    assert retransmission[0] >> 4 == 0x7
    assert decompressor.feed(retransmission) == packets[4]
    assert decompressor.feed(compressor.compress(packets[5])) == packets[5]


@pytest.mark.parametrize("packet", [
    udp(), echo(), tcp(6, payload=b"x"), tcp(flags=0x02), tcp(flags=0x11), tcp(flags=0x14),
], ids=["udp", "icmp", "ipv6", "syn", "fin", "rst"])
def test_what_vj_does_not_compress_goes_as_plain_ip(packet: bytes) -> None:
    compressor, decompressor, _counted = pair()
    assert compressor.compress(packet) == packet
    assert decompressor.feed(packet) == packet


def test_changing_options_such_as_timestamps_go_uncompressed() -> None:
    compressor, _decompressor, _counted = pair()
    frames = [compressor.compress(tcp(seq=1 + 10 * i, payload=bytes(10),
                                      options=timestamps(100 + i, 5))) for i in range(5)]
    assert all(frame[0] >> 4 == 0x7 for frame in frames)


def test_ip_id_jumps_are_carried() -> None:
    compressor, decompressor, _counted = pair()
    packets = [tcp(seq=1 + i, payload=b"z", ip_id=i * 1000) for i in range(4)]
    frames = [compressor.compress(packet) for packet in packets]
    assert frames[1][0] & NEW_I
    assert [decompressor.feed(frame) for frame in frames] == packets


def test_a_connection_number_past_the_slots_is_a_counted_drop() -> None:
    compressor, decompressor, counted = pair()
    frame = bytearray(compressor.compress(tcp(payload=b"q")))
    frame[9] = 16
    assert decompressor.feed(bytes(frame)) is None
    assert decompressor.feed(bytes((TYPE_COMPRESSED | NEW_C, 200, 0, 0))) is None
    assert counted == {drops.COMPRESS_BAD_FRAME: 2}


def test_compressed_before_any_context_is_dropped() -> None:
    _compressor, decompressor, counted = pair()
    assert decompressor.feed(bytes((TYPE_COMPRESSED, 1, 2))) is None
    assert decompressor.feed(bytes((TYPE_COMPRESSED | NEW_C, 3, 1, 2))) is None
    assert counted == {drops.COMPRESS_TOSSED: 1, drops.COMPRESS_NO_CONTEXT: 1}


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_arbitrary_bytes_never_raise(frame: bytes) -> None:
    compressor, decompressor, _counted = pair()
    decompressor.feed(compressor.compress(tcp(payload=b"a")))
    for first in (0x70, TYPE_COMPRESSED, TYPE_COMPRESSED | NEW_C, 0xFF):
        decompressor.feed(bytes((first,)) + frame)


def test_uncompressed_frames_keep_the_header_length_nibble() -> None:
    compressor, _decompressor, _counted = pair()
    frame = compressor.compress(tcp(payload=b"a", dst=B4))
    assert frame[0] == 0x75  # as the kernel's slhc: 0x70 | IHL
