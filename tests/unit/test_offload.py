"""The offload layer's pure logic: virtio_net_hdr, chunking and reassembly in any order, hellos,
the agreement on offload flags, and checksum completion against the RFC 1071 reference."""

from __future__ import annotations

import random
import struct
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkbridge.wire import drops
from linkbridge.wire.frames import OFFLOAD_CHUNK, classify
from linkbridge.wire.offload import (
    ALL_OFFLOADS,
    CAN_TSO4,
    CAN_TSO6,
    CAN_USO,
    CHUNK_HEADER,
    FIRST_CHUNK_HEADER,
    GSO_ECN,
    GSO_NONE,
    GSO_TCPV4,
    GSO_TCPV6,
    GSO_UDP,
    GSO_UDP_L4,
    MAX_CHUNKS,
    MIN_FRAME_SIZE,
    NEEDS_CSUM,
    TCP_OFFLOADS,
    TUN_F_CSUM,
    TUN_F_TSO4,
    TUN_F_TSO6,
    TUN_F_USO4,
    TUN_F_USO6,
    VNET_HDR_LEN,
    ChunkLayout,
    ChunkReassembler,
    VnetHeader,
    agreed_flags,
    capabilities,
    chunk_frames,
    chunk_payloads,
    chunk_runs,
    coalesced_packet,
    complete_checksum,
    flag_names,
    hello_frame,
    max_packet,
    offload_attempts,
    ones_complement_sum,
    parse_hello,
    run_frames,
    single_run_packet,
    whole_run,
)
from linkbridge.wire.packet import internet_checksum, packet_problem
from linkbridge.wire.segments import MAX_SEGMENTS, MAX_UDP_PAYLOAD, split_run

SOURCE, DESTINATION = bytes([198, 19, 0, 1]), bytes([198, 19, 0, 2])
headers = st.builds(VnetHeader, st.integers(0, 255), st.integers(0, 255),
                    *(st.integers(0, 0xFFFF) for _ in range(4)))


def tcp4(payload: bytes, *, complete: bool) -> bytes:
    """An IPv4 TCP packet; its checksum whole (`complete`) or left as the kernel leaves it for
    the device: the pseudo-header's sum, not complemented."""
    length = 20 + 20 + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, length, 1, 0x4000, 64, 6, 0, SOURCE, DESTINATION)
    ip = ip[:10] + internet_checksum(ip).to_bytes(2, "big") + ip[12:]
    tcp = struct.pack("!HHIIBBHHH", 40000, 5201, 1, 1, 5 << 4, 0x18, 65535, 0, 0) + payload
    pseudo = SOURCE + DESTINATION + struct.pack("!BBH", 0, 6, len(tcp))
    field = internet_checksum(pseudo + tcp) if complete else ones_complement_sum(pseudo)
    return ip + tcp[:16] + field.to_bytes(2, "big") + tcp[18:]


def tso_header(packet: bytes, gso_type: int = GSO_TCPV4, mss: int = 1400) -> VnetHeader:
    return VnetHeader(NEEDS_CSUM, gso_type, 40, mss, 20, 16)


def super_packet(size: int) -> bytes:
    return tcp4(random.Random(size).randbytes(size - 40), complete=False)


# --- virtio_net_hdr --------------------------------------------------------------------------

@given(headers)
def test_header_round_trips_in_both_byte_orders(header: VnetHeader) -> None:
    assert len(header.device_bytes()) == len(header.network_bytes()) == VNET_HDR_LEN
    assert VnetHeader.from_device(header.device_bytes()) == header
    assert VnetHeader.from_network(header.network_bytes()) == header
    assert VnetHeader.from_network(b"xx" + header.network_bytes(), 2) == header


def test_header_byte_orders_are_the_hosts_on_the_device_and_big_on_the_wire() -> None:
    header = VnetHeader(NEEDS_CSUM, GSO_TCPV4, 0x0102, 0x0304, 0x0506, 0x0708)
    little = bytes([1, 1, 2, 1, 4, 3, 6, 5, 8, 7])
    assert header.device_bytes() == (little if sys.byteorder == "little"
                                     else header.network_bytes())
    assert header.network_bytes() == bytes([1, 1, 1, 2, 3, 4, 5, 6, 7, 8])


def test_plain_and_segmented() -> None:
    assert VnetHeader().plain and not VnetHeader().segmented
    assert not VnetHeader(flags=NEEDS_CSUM).plain
    for gso in (GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, GSO_TCPV4 | GSO_ECN):
        assert VnetHeader(gso_type=gso).segmented
    assert not VnetHeader(gso_type=GSO_ECN).segmented


@pytest.mark.parametrize(("header", "length", "problem"), [
    (VnetHeader(), 20, None),
    (VnetHeader(NEEDS_CSUM, GSO_NONE, 0, 0, 20, 16), 38, None),
    (VnetHeader(NEEDS_CSUM, GSO_NONE, 0, 0, 20, 16), 37, drops.OFFLOAD_BAD_HEADER),
    (VnetHeader(NEEDS_CSUM, GSO_TCPV4, 40, 1400, 20, 16), 3000, None),
    (VnetHeader(NEEDS_CSUM, GSO_TCPV4, 40, 0, 20, 16), 3000, drops.OFFLOAD_BAD_HEADER),
    (VnetHeader(NEEDS_CSUM, GSO_TCPV6, 4000, 1400, 40, 16), 3000, drops.OFFLOAD_BAD_HEADER),
    (VnetHeader(0, GSO_UDP, 0, 1400, 0, 0), 3000, drops.OFFLOAD_BAD_HEADER),
    (VnetHeader(0, 9, 0, 0, 0, 0), 3000, drops.OFFLOAD_BAD_HEADER),
])
def test_header_problems(header: VnetHeader, length: int, problem: str | None) -> None:
    assert header.problem(length) == problem


# --- chunks ----------------------------------------------------------------------------------

def test_offload_frames_are_in_their_registry_slot() -> None:
    frames = chunk_frames(VnetHeader(), b"\x45" * 100, 1472, 7)
    kind = classify(frames[0][0])
    assert kind is not None and kind.nibble == OFFLOAD_CHUNK



def test_a_hello_is_an_ipv4_packet_a_plain_peer_discards() -> None:
    """From 0.0.0.0 to 0.0.0.1 (a martian any kernel drops), protocol 253, checksum right."""
    hello = hello_frame(CAN_TSO4, False)
    assert packet_problem(hello) is None and internet_checksum(hello[:20]) == 0
    assert hello[9] == 253 and hello[12:16] == bytes(4) and hello[16:20] == bytes((0, 0, 0, 1))


@given(size=st.integers(1, 65535), frame_size=st.integers(MIN_FRAME_SIZE, 9000),
       packet_id=st.integers(0, 1 << 20))
def test_chunks_fit_the_frame_and_all_but_the_last_fill_it(size: int, frame_size: int,
                                                           packet_id: int) -> None:
    packet = bytes(range(256)) * (size // 256) + bytes(size % 256)
    if size > max_packet(frame_size):
        with pytest.raises(ValueError, match="chunks"):
            chunk_frames(VnetHeader(), packet, frame_size, packet_id)
        return
    frames = chunk_frames(VnetHeader(), packet, frame_size, packet_id)
    assert 1 <= len(frames) <= MAX_CHUNKS
    assert all(len(frame) == frame_size for frame in frames[:-1])
    assert len(frames[-1]) <= frame_size
    carried = len(frames[0]) - FIRST_CHUNK_HEADER + sum(len(f) - CHUNK_HEADER for f in frames[1:])
    assert carried == size
    assert {frame[1:3] for frame in frames} == {(packet_id % 65536).to_bytes(2, "big")}


def test_chunk_frames_refuse_small_frames() -> None:
    with pytest.raises(ValueError, match="at least"):
        chunk_frames(VnetHeader(), b"x", MIN_FRAME_SIZE - 1, 0)


def test_a_64k_super_packet_fits_one_udp_frame_size_of_chunks() -> None:
    assert max_packet(1472) == 65535
    assert len(chunk_frames(VnetHeader(), bytes(65535), 1472, 0)) == 45


@given(size=st.integers(40, 20000), frame_size=st.integers(MIN_FRAME_SIZE, 2000),
       seed=st.integers(0, 1000))
def test_reassembly_in_any_order_gives_the_packet_and_header_back(size: int, frame_size: int,
                                                                  seed: int) -> None:
    packet = super_packet(size)
    header = tso_header(packet)
    frames = chunk_frames(header, packet, frame_size, seed)
    random.Random(seed).shuffle(frames)
    reassembler = ChunkReassembler()
    results = [reassembler.feed(frame) for frame in frames]
    assert results[:-1] == [None] * (len(frames) - 1)
    assert results[-1] == (header, packet)


def test_interleaved_packets_and_duplicates() -> None:
    reassembler = ChunkReassembler()
    one, two = super_packet(5000), super_packet(7000)
    a = chunk_frames(tso_header(one), one, 1472, 1)
    b = chunk_frames(tso_header(two), two, 1472, 2)
    assert len(a) < len(b)
    mixed = [frame for pair in zip(a, b[: len(a)], strict=True) for frame in pair]
    delivered = [result for frame in [*mixed, *b[len(a):]]
                 if (result := reassembler.feed(frame)) is not None]
    assert delivered == [(tso_header(one), one), (tso_header(two), two)]
    assert reassembler.feed(b[1]) is None  # packet id 2 again: a new packet, not a duplicate
    assert reassembler.feed(b[1]) == drops.OFFLOAD_DUPLICATE


def test_a_lost_chunk_costs_its_packet_once_evicted() -> None:
    reassembler = ChunkReassembler(pending=2)
    packets = [super_packet(4000 + n) for n in range(3)]
    for packet_id, packet in enumerate(packets):
        for frame in chunk_frames(tso_header(packet), packet, 1472, packet_id)[:-1]:
            assert reassembler.feed(frame) is None
    assert reassembler.take_evicted() == 1 and reassembler.take_evicted() == 0


@pytest.mark.parametrize("frame", [
    b"", b"\x10", b"\x10\x00\x01\x00", b"\x10\x00\x01\x00\x00", b"\x10\x00\x01\x02\x02",
    b"\x10\x00\x01\x00\x02abc", b"\x11\x00\x01\x00\x01" + bytes(20), b"\x45" + bytes(30),
])
def test_bad_chunks_are_counted_drops(frame: bytes) -> None:
    assert ChunkReassembler().feed(frame) == drops.OFFLOAD_BAD_CHUNK


def test_a_chunk_that_contradicts_its_count_drops_the_packet() -> None:
    packet = super_packet(5000)
    frames = chunk_frames(tso_header(packet), packet, 1472, 9)
    reassembler = ChunkReassembler()
    assert reassembler.feed(frames[0]) is None
    liar = frames[1][:4] + bytes([len(frames) + 1]) + frames[1][5:]
    assert reassembler.feed(liar) == drops.OFFLOAD_MISMATCH


def test_what_is_rebuilt_must_be_an_ip_packet_its_header_fits() -> None:
    bad_ip = b"\x45" + bytes(3) + bytes(60)
    result = ChunkReassembler().feed(chunk_frames(VnetHeader(), bad_ip, 1472, 0)[0])
    assert result == drops.MALFORMED + "length_mismatch"
    packet = super_packet(1000)
    wrong = VnetHeader(NEEDS_CSUM, GSO_TCPV4, 40, 1400, 990, 16)
    assert ChunkReassembler().feed(chunk_frames(wrong, packet, 1472, 0)[0]) \
        == drops.OFFLOAD_BAD_HEADER


@given(size=st.integers(40, 12000), seed=st.integers(0, 99))
def test_two_sides_in_memory_with_loss(size: int, seed: int) -> None:
    """Chunks of several packets, some lost: every packet delivered is exactly one that was
    sent; the others are missing, never broken."""
    rng = random.Random(seed)
    sent = [super_packet(size + n) for n in range(4)]
    frames = [frame for n, packet in enumerate(sent)
              for frame in chunk_frames(tso_header(packet), packet, 1000, n)]
    kept = [frame for frame in frames if rng.random() > 0.1]
    reassembler = ChunkReassembler()
    delivered = [r for frame in kept if (r := reassembler.feed(frame)) is not None]
    for result in delivered:
        assert not isinstance(result, str)
        assert result[1] in sent and packet_problem(result[1]) is None


# --- hello and agreement ---------------------------------------------------------------------

@given(caps=st.integers(0, 255), reply=st.booleans())
def test_hello_round_trips(caps: int, reply: bool) -> None:
    assert parse_hello(hello_frame(caps, reply)) == (caps, reply)


def test_not_a_hello() -> None:
    hello = hello_frame(3, True)
    for frame in (b"", hello[:-1], hello + b"\0", hello[:24] + b"\x02" + hello[25:],
                  hello[:20] + b"LBOX" + hello[24:], b"\x46" + hello[1:]):
        assert parse_hello(frame) is None


def test_capabilities_and_agreement() -> None:
    assert capabilities(ALL_OFFLOADS) == CAN_TSO4 | CAN_TSO6 | CAN_USO
    assert capabilities(TCP_OFFLOADS) == CAN_TSO4 | CAN_TSO6
    assert capabilities(TUN_F_TSO4 | TUN_F_TSO6) == 0  # no segmentation without checksums
    assert capabilities(TUN_F_CSUM | TUN_F_USO4) == 0  # USO both ways or not at all
    assert agreed_flags(ALL_OFFLOADS, CAN_TSO4 | CAN_TSO6 | CAN_USO) == ALL_OFFLOADS
    assert agreed_flags(ALL_OFFLOADS, CAN_TSO4 | CAN_TSO6) == TCP_OFFLOADS  # a 6.1 peer
    assert agreed_flags(TCP_OFFLOADS, CAN_TSO4 | CAN_TSO6 | CAN_USO) == TCP_OFFLOADS
    assert agreed_flags(ALL_OFFLOADS, CAN_TSO6) == TUN_F_CSUM | TUN_F_TSO6
    assert agreed_flags(ALL_OFFLOADS, 0) == TUN_F_CSUM
    assert agreed_flags(0, CAN_TSO4 | CAN_TSO6 | CAN_USO) == 0  # the kernel refused it all


def test_flag_names() -> None:
    assert flag_names(0) == "off"
    assert flag_names(ALL_OFFLOADS) == "csum,tso4,tso6,uso4,uso6"
    assert flag_names(TUN_F_USO6 | TUN_F_USO4) == "uso4,uso6"
    assert flag_names(TUN_F_CSUM | 0x8000) == "csum,0x8000"


# --- checksums -------------------------------------------------------------------------------

@given(st.binary(max_size=3000))
def test_ones_complement_sum_matches_rfc_1071(data: bytes) -> None:
    assert ~ones_complement_sum(data) & 0xFFFF == internet_checksum(data) or (
        not any(data) and ones_complement_sum(data) == 0)


@given(st.binary(min_size=0, max_size=2000))
def test_completing_the_kernels_partial_checksum_gives_the_whole_one(payload: bytes) -> None:
    partial, whole = tcp4(payload, complete=False), tcp4(payload, complete=True)
    assert complete_checksum(partial, 20, 16) == whole


def test_a_udp_checksum_of_zero_is_sent_as_all_ones() -> None:
    # a UDP datagram whose words sum to 0xFFFF (complement 0): 0xFFFF goes in the field
    packet = bytes(20) + struct.pack("!HHHH", 0, 0, 10, 0xFFFF - 10) + b"\x00\x00"
    done = complete_checksum(packet, 20, 6)
    assert done[26:28] == b"\xff\xff"


@pytest.mark.parametrize(("text", "attempts"), [
    ("", (ALL_OFFLOADS, TCP_OFFLOADS)),
    ("csum,tso4,tso6", (TCP_OFFLOADS,)),
    ("csum, uso4,uso6", (TUN_F_CSUM | TUN_F_USO4 | TUN_F_USO6, TUN_F_CSUM)),
    ("csum,0x8000", (TUN_F_CSUM | 0x8000,)),
    ("7", (TCP_OFFLOADS,)),
])
def test_offload_attempts(text: str, attempts: tuple[int, ...]) -> None:
    assert offload_attempts(text) == attempts


def test_offload_attempts_name_a_bad_word() -> None:
    with pytest.raises(ValueError, match="unknown offload 'tso5'; choose from csum"):
        offload_attempts("csum,tso5")


@given(size=st.integers(40, 65535), frame_size=st.integers(MIN_FRAME_SIZE, 9000))
def test_a_whole_run_is_rebuilt_in_one_step(size: int, frame_size: int) -> None:
    packet = super_packet(size)
    if size > max_packet(frame_size):
        return
    frames = chunk_frames(tso_header(packet), packet, frame_size, 77)
    assert whole_run(frames) == ChunkReassembler().feed(frames[0]) if len(frames) == 1 \
        else whole_run(frames) == (tso_header(packet), packet)


def test_anything_but_a_whole_run_is_left_to_the_reassembler() -> None:
    packet = super_packet(6000)
    frames = chunk_frames(tso_header(packet), packet, 1472, 5)
    other = chunk_frames(tso_header(packet), packet, 1472, 6)
    for wrong in (frames[::-1], frames[:-1], [*frames[:2], other[2], *frames[3:]],
                  [frames[0], frames[2], frames[1], *frames[3:]], [b"\x45" * 30, *frames[1:]],
                  [frames[0], frames[1][:4], *frames[2:]]):
        assert whole_run(wrong) is None


# --- chunk runs: the iovecs of UDP GSO sends, and GRO reads rebuilt whole -------------------

def ip_packet(size: int, version: int) -> bytes:
    """A well-formed IPv4 or IPv6 packet (TCP, as far as its header says) of `size` bytes."""
    body = random.Random(size).randbytes(size)
    if version == 4:
        return struct.pack("!BBH", 0x45, 0, size) + body[4:]
    return bytes((0x60,)) + body[1:4] + struct.pack("!HB", size - 40, 6) + body[7:]


def reference_chunks(header: VnetHeader, packet: bytes, frame_size: int,
                     packet_id: int) -> list[bytes]:
    """docs/offload.md's chunk format, written out plainly."""
    first, rest = frame_size - 15, frame_size - 5
    pieces = [packet[:first]] + [packet[at : at + rest] for at in range(first, len(packet), rest)]
    return [struct.pack("!BHBB", 0x10, packet_id % 65536, index, len(pieces))
            + (header.network_bytes() if index == 0 else b"") + piece
            for index, piece in enumerate(pieces)]


def boundary_sizes(frame_size: int) -> list[int]:
    """Packet sizes either side of every place the chunking changes: a chunk's end, the end of
    one GSO run, the most chunks a packet may have."""
    first, rest = chunk_payloads(frame_size)
    edges = [first, first + rest, first + 2 * rest, single_run_packet(frame_size),
             max_packet(frame_size)]
    return sorted({size for edge in edges for size in (edge - 1, edge, edge + 1)
                   if 40 <= size <= 65535})


FRAME_SIZES = (MIN_FRAME_SIZE, MIN_FRAME_SIZE + 1, 1232, 1452, 1472, 1473, 9000)


@pytest.mark.parametrize("frame_size", FRAME_SIZES)
def test_chunk_runs_are_the_documented_chunks_as_gso_sends(frame_size: int) -> None:
    header = VnetHeader(NEEDS_CSUM, GSO_TCPV4, 40, 1400, 20, 16)
    for size in boundary_sizes(frame_size):
        packet = ip_packet(size, 4)
        if size > max_packet(frame_size):
            with pytest.raises(ValueError, match="chunks"):
                chunk_runs(header, packet, frame_size, size)
            continue
        runs = chunk_runs(header, packet, frame_size, 65536 + size)
        frames = [frame for run in runs for frame in run_frames(run)]
        assert frames == reference_chunks(header, packet, frame_size, size), size
        assert chunk_frames(header, packet, frame_size, size) == frames
        assert (len(runs) == 1) == (size <= single_run_packet(frame_size)), size
        for pieces, count, length in runs:
            sent = run_frames((pieces, count, length))
            assert count == len(sent) <= MAX_SEGMENTS and length <= MAX_UDP_PAYLOAD
            assert length == sum(map(len, pieces)) == sum(map(len, sent))
            assert all(len(frame) == frame_size for frame in sent[:-1])  # one GSO send
        payload = runs[0][0][1]  # a slice of the packet, not a copy of it
        assert isinstance(payload, memoryview) and payload.obj is packet


@pytest.mark.parametrize("frame_size", FRAME_SIZES)
def test_a_read_into_the_chunk_layout_is_stamped_into_the_same_chunks(frame_size: int) -> None:
    read_size = 65536 + VNET_HDR_LEN
    layout = ChunkLayout(frame_size, read_size)
    assert sum(map(len, layout.slots)) >= read_size
    header = VnetHeader(NEEDS_CSUM, GSO_TCPV4, 40, 1400, 20, 16)
    for size in boundary_sizes(frame_size):
        packet = ip_packet(size, 4)
        data = header.device_bytes() + packet
        if len(data) > read_size:
            continue
        at = 0
        for slot in layout.slots:  # as readv() fills them
            piece = data[at : at + len(slot)]
            slot[: len(piece)] = piece
            at += len(slot)
        assert layout.read(len(data)) == data
        assert layout.header() == tuple(vars(header).values())
        if size > max_packet(frame_size):
            with pytest.raises(ValueError, match="chunks"):
                layout.stamp(header, size, size)
            continue
        runs = layout.stamp(header, size, 65536 + size)
        expected = chunk_runs(header, packet, frame_size, size)
        assert [(count, length) for _pieces, count, length in runs] \
            == [(count, length) for _pieces, count, length in expected]
        for (pieces, _count, length), run in zip(runs, expected, strict=True):
            assert len(pieces) == 1 and len(pieces[0]) == length  # one iovec per GSO send
            assert split_run(bytes(pieces[0]), frame_size) == run_frames(run), size


def test_a_single_run_packet_is_the_most_one_udp_send_carries() -> None:
    assert single_run_packet(1472) == 1457 + 43 * 1467  # 44 chunks of 1472 bytes
    assert single_run_packet(MIN_FRAME_SIZE) == 561 + 63 * 571  # 64 chunks, the kernel's most
    assert single_run_packet(9000) == 8985 + 6 * 8995  # 7 chunks: 65507 bytes a UDP send


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("frame_size", FRAME_SIZES)
def test_a_gro_read_of_one_run_is_rebuilt_whole(frame_size: int, version: int) -> None:
    header = VnetHeader(NEEDS_CSUM, GSO_TCPV4 if version == 4 else GSO_TCPV6, 40, 1400, 20, 16)
    for size in boundary_sizes(frame_size):
        if size > single_run_packet(frame_size):
            continue
        packet = ip_packet(size, version)
        (run,) = chunk_runs(header, packet, frame_size, size)
        read = b"".join(run[0])  # what GRO hands the peer: the datagrams back to back
        rebuilt = coalesced_packet(read, frame_size)
        frames = run_frames(run)
        if len(frames) == 1:
            assert rebuilt is None  # one datagram: no run, the reassembler takes it
            assert ChunkReassembler().feed(frames[0]) == (header, packet)
        else:
            assert rebuilt == (header, packet) == whole_run(frames), size


def test_a_gro_read_that_is_not_one_packets_chunks_is_left_whole() -> None:
    packet, other = ip_packet(6000, 4), ip_packet(6000, 6)
    frames = chunk_frames(tso_header(packet), packet, 1472, 5)
    others = chunk_frames(tso_header(other), other, 1472, 6)
    for wrong in (frames[::-1], frames[:-1], frames[1:], [*frames[:2], others[2], *frames[3:]],
                  [frames[0], frames[2], frames[1], *frames[3:]], [*frames, others[0]],
                  [b"\x45" + frames[0][1:], *frames[1:]], [*frames[:-1], frames[-1][:4]]):
        assert coalesced_packet(b"".join(wrong), 1472) is None
    read = b"".join(frames)
    for segment in (0, -1, 1471, 1473, len(read), 14):
        assert coalesced_packet(read, segment) is None
    assert coalesced_packet(read, 1472) == (tso_header(packet), packet)


def test_a_rebuilt_run_is_checked_like_any_reassembled_packet() -> None:
    packet = ip_packet(6000, 4)
    lying = VnetHeader(NEEDS_CSUM, GSO_TCPV4, 40, 1400, 20, 6000)  # checksum beyond the end
    assert coalesced_packet(b"".join(chunk_frames(lying, packet, 1472, 1)), 1472) \
        == drops.OFFLOAD_BAD_HEADER
    short = packet[:2] + (5000).to_bytes(2, "big") + packet[4:]  # its length field lies
    assert coalesced_packet(b"".join(chunk_frames(tso_header(short), short, 1472, 1)), 1472) \
        == drops.MALFORMED + drops.LENGTH_MISMATCH
