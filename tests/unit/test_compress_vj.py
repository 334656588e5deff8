"""`--compress vj` (wire/compress/vj.py): RFC 1144 as the kernel's cslip frames it, two
endpoints in memory; without loss it delivers exactly the sent packets, after loss what RFC 1144
allows (test_silent_loss_delivers_sent_payloads_with_valid_checksums)."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkbridge.wire import drops
from linkbridge.wire.compress import VJ, codec_pair
from linkbridge.wire.compress.sums import pseudo_sum, transport_valid, word_sum
from linkbridge.wire.compress.vj import (
    ACK,
    NEW_A,
    NEW_C,
    NEW_I,
    NEW_S,
    PSH,
    SPECIAL_D,
    SPECIAL_I,
    SPECIALS,
    TCP_PUSH,
    TYPE_COMPRESSED,
    URG,
    VjCompressor,
    VjDecompressor,
    tcp_header_length,
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


LOSS = st.lists(st.sampled_from(["pass"] * 6 + ["lose"]), min_size=1, max_size=200)


@settings(max_examples=150, deadline=None)
@given(streams(VJ_KINDS), LOSS)
def test_silent_loss_delivers_sent_payloads_with_valid_checksums(packets: list[bytes],
                                                                fates: list[str]) -> None:
    """RFC 1144's limit on a line that loses frames silently (keeping order, damaging none):
    a compressed frame is coded against the previous packet of its connection, and one without
    a connection number belongs to the connection of the frame before it. After a lost frame
    a later one can be rebuilt against the wrong reference: wrong IP ID (covered by no
    checksum), sequence, ack or window numbers whose errors cancel in the 16-bit TCP checksum,
    or even another connection's addresses and ports when the lost frame was the one that
    switched connections (test_a_silently_lost_switch_pairs_a_frame_with_another_flow).
    What holds, and this checks for every delivered packet, against the sent packet whose frame
    it was rebuilt from: before the first loss, and from any uncompressed or plain IP frame,
    it is that packet exactly; otherwise its payload, PSH and URG are that packet's, its other
    fixed fields (addresses, ports, TOS, TTL, DF, other TCP flags, options) those of a packet
    delivered before it, and its IP and TCP checksums hold."""
    compressor, decompressor, _counted = pair()
    delivered: set[bytes] = set()
    lost = False
    for index, packet in enumerate(packets):
        frame = compressor.compress(packet)
        if fates[index % len(fates)] == "lose":
            lost = True
            continue
        got = decompressor.feed(frame)
        if got is None:
            continue
        assert tcp_header_length(got) is not None
        assert tcp_checksum_holds(got) and ip_checksum_holds(got)
        if not lost or not frame[0] & TYPE_COMPRESSED:
            assert got == packet
        else:
            assert payload(got) == payload(packet)
            assert tcp_flags(got) & (PSH | URG) == tcp_flags(packet) & (PSH | URG)
            assert fixed_fields(got) in delivered
        delivered.add(fixed_fields(got))


@settings(max_examples=150, deadline=None)
@given(streams(VJ_KINDS), LOSS)
def test_reported_loss_never_delivers_another_flow_or_payload(packets: list[bytes],
                                                              fates: list[str]) -> None:
    """When the framing reports each lost frame (a SLIP error or CRC mismatch: the glue calls
    frame_lost(), RFC 1144's TYPE_ERROR) the decompressor tosses compressed frames until one
    names its connection, so with no more connections than slots a delivered packet has the
    fixed fields, payload, PSH and URG of the packet it was sent as; only the delta-coded
    numbers can still be off after a loss, with a valid TCP checksum."""
    compressor, decompressor, _counted = pair()
    for index, packet in enumerate(packets):
        frame = compressor.compress(packet)
        if fates[index % len(fates)] == "lose":
            decompressor.frame_lost()
            continue
        got = decompressor.feed(frame)
        if got is None:
            continue
        assert tcp_checksum_holds(got) and ip_checksum_holds(got)
        assert fixed_fields(got) == fixed_fields(packet)
        assert payload(got) == payload(packet)
        assert tcp_flags(got) & (PSH | URG) == tcp_flags(packet) & (PSH | URG)


def test_a_silently_lost_switch_pairs_a_frame_with_another_flow() -> None:
    """The minimal case hypothesis found: flow A's first packet arrives, then A's next and
    flow B's first (uncompressed, slot 1) are lost. B's second goes compressed without a
    connection number, so the decompressor rebuilds it against A's header, and since A's
    port is one below B's and its ack one above, the TCP checksum still holds: a packet of
    flow A with B's payload is delivered. RFC 1144 has no defence against this; a reported
    loss (a SLIP error, CRC mismatch) makes it toss the frame instead."""
    a0 = tcp(sport=20001, seq=1000, ack=7001, ip_id=1)
    a1 = tcp(sport=20001, seq=1000, ack=7002, ip_id=2)
    b0 = tcp(sport=20002, seq=1000, ack=7000, ip_id=1)
    b1 = tcp(sport=20002, seq=1000, ack=7000, ip_id=2, payload=b"\xce")
    for report in (False, True):
        compressor, decompressor, counted = pair()
        frames = [compressor.compress(packet) for packet in (a0, a1, b0, b1)]
        assert frames[2][0] >> 4 == 0x7 and frames[2][9] == 1  # B's first: slot 1
        assert frames[3][0] & (TYPE_COMPRESSED | NEW_C) == TYPE_COMPRESSED  # no slot number
        assert decompressor.feed(frames[0]) == a0
        if report:  # a1 and b0 lost with a framing error
            decompressor.frame_lost()
            assert decompressor.feed(frames[3]) is None
            assert counted == {drops.COMPRESS_TOSSED: 1}
        else:
            hybrid = tcp(sport=20001, seq=1000, ack=7001, ip_id=2, payload=b"\xce")
            assert decompressor.feed(frames[3]) == hybrid
            assert hybrid not in (a0, a1, b0, b1) and not counted


def test_a_change_of_other_tcp_flags_goes_uncompressed() -> None:
    """ECE and CWR are not among the change bits: a packet that changes them goes uncompressed
    (before, it went compressed and failed its checksum at the other end every time)."""
    compressor, decompressor, counted = pair()
    packets = [tcp(seq=1 + 10 * i, payload=bytes(10), ip_id=i + 1,
                   flags=ACK | (0x40 if i == 2 else 0)) for i in range(4)]
    frames = [compressor.compress(packet) for packet in packets]
    assert [frame[0] >> 4 == 0x7 for frame in frames] == [True, False, True, True]
    assert [decompressor.feed(frame) for frame in frames] == packets
    assert not counted


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


def fixed_fields(packet: bytes) -> bytes:
    """`packet`'s headers without the length, the fields VJ codes as deltas, the checksums and
    the PSH and URG flags it carries as change bits."""
    ihl = (packet[0] & 0x0F) * 4
    hlen = ihl + (packet[ihl + 12] >> 4) * 4
    cleared = bytearray(delta_coded_fields_cleared(packet)[:hlen])
    cleared[2:4] = b"\0\0"
    cleared[ihl + 13] &= ~(PSH | URG) & 0xFF
    return bytes(cleared)


def payload(packet: bytes) -> bytes:
    ihl = (packet[0] & 0x0F) * 4
    return packet[ihl + (packet[ihl + 12] >> 4) * 4:]


def tcp_flags(packet: bytes) -> int:
    return packet[(packet[0] & 0x0F) * 4 + 13]


def ip_checksum_holds(packet: bytes) -> bool:
    return word_sum(packet[:(packet[0] & 0x0F) * 4]) == 0


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


def test_a_frame_longer_than_any_ip_packet_is_a_counted_drop() -> None:
    """Found by `python -m benchmarks fuzz vj`: a compressed frame whose payload made the packet
    longer than 65535 bytes (a UDP datagram can carry one) raised OverflowError."""
    compressor, decompressor, counted = pair()
    decompressor.feed(compressor.compress(tcp(payload=b"a")))
    frame = bytes((TYPE_COMPRESSED | NEW_C, 0, 0, 0)) + bytes(65527 - 4)
    assert decompressor.feed(frame) is None
    assert counted == {drops.COMPRESS_BAD_FRAME: 1}


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


def test_urg_after_a_special_is_the_frames() -> None:
    """A special (SPECIAL_I/D) is never sent for a packet with URG, so the decompressor clears
    URG on one, as a compressor like the kernel's may send it after a packet with URG and the
    same urgent pointer; our compressor sends the deltas instead in that case."""
    packets = [tcp(seq=1, ack=10, payload=b"abcd", flags=0x30, urgent=3, ip_id=1),
               tcp(seq=5, ack=14, payload=b"abcd", flags=0x10, urgent=3, ip_id=2)]
    compressor, decompressor, counted = pair()
    frames = [compressor.compress(packet) for packet in packets]
    assert frames[1][0] & SPECIALS == NEW_S | NEW_A  # not the special
    assert [decompressor.feed(frame) for frame in frames] == packets
    special = bytes((TYPE_COMPRESSED | SPECIAL_I,)) + packets[1][36:38] + b"abcd"
    fresh = pair()[1]
    assert fresh.feed(frames[0]) == packets[0]
    assert fresh.feed(special) == packets[1]
    assert not counted
