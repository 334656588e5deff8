"""The offload layer's glue (datapath/offloading.py) against a device double: a SEQPACKET socket
pair that keeps packet boundaries as a TUN descriptor does. Two layers joined in memory agree
on offloads by hello; a layer whose peer never says hello sends only whole, complete packets."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkbridge.datapath.counters import Counters
from linkbridge.datapath.offloading import OffloadingTunnel, frame_problem
from linkbridge.errors import LinkbridgeError
from linkbridge.testing import MemoryEndpoint
from linkbridge.wire import drops
from linkbridge.wire.offload import (
    ALL_OFFLOADS,
    GSO_NONE,
    GSO_TCPV4,
    NEEDS_CSUM,
    TCP_OFFLOADS,
    TUN_F_CSUM,
    VNET_HDR_LEN,
    VnetHeader,
    chunk_frames,
    hello_frame,
    ones_complement_sum,
)
from linkbridge.wire.packet import internet_checksum, packet_problem


class FakeDevice:
    """A TUN descriptor with IFF_VNET_HDR: `kernel` is the kernel's end of the pair."""

    def __init__(self, accepted: int) -> None:
        self.name = "fake0"
        self.counters = Counters()
        self.accepted = accepted
        self.read_size = 65536 + VNET_HDR_LEN
        self.offloads: list[int] = []
        self._ours, self.kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._ours.setblocking(False)
        self.kernel.setblocking(False)
        for sock in (self._ours, self.kernel):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)

    def fileno(self) -> int:
        return self._ours.fileno()

    def set_offload(self, flags: int) -> None:
        self.offloads.append(flags)

    def hand_out(self, header: VnetHeader, packet: bytes) -> None:
        self.kernel.send(header.device_bytes() + packet)

    def written(self) -> list[tuple[VnetHeader, bytes]]:
        out = []
        while True:
            try:
                data = self.kernel.recv(1 << 17)
            except BlockingIOError:
                return out
            out.append((VnetHeader.from_device(data), data[VNET_HDR_LEN:]))

    def close(self) -> None:
        self._ours.close()
        self.kernel.close()


@pytest.fixture
def devices() -> Iterator[tuple[FakeDevice, FakeDevice]]:
    pair = FakeDevice(ALL_OFFLOADS), FakeDevice(TCP_OFFLOADS)
    yield pair
    for device in pair:
        device.close()


def tcp4(size: int, *, complete: bool) -> bytes:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    src, dst = bytes([198, 19, 0, 1]), bytes([198, 19, 0, 2])
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40 + size, 1, 0x4000, 64, 6, 0, src, dst)
    tcp = struct.pack("!HHIIBBHHH", 1, 2, 3, 4, 5 << 4, 0x10, 1000, 0, 0) + payload
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
    field = internet_checksum(pseudo + tcp) if complete else ones_complement_sum(pseudo)
    return ip + tcp[:16] + field.to_bytes(2, "big") + tcp[18:]


PARTIAL = VnetHeader(NEEDS_CSUM, GSO_NONE, 0, 0, 20, 16)
TSO = VnetHeader(NEEDS_CSUM, GSO_TCPV4, 40, 1432, 20, 16)


class GsoLink(MemoryEndpoint):
    """A link that takes runs of datagrams as gathered pieces (a SegmentSender), as udp: does:
    `sent` keeps each datagram of a run, `calls` what came in which call; with `refuse` it
    takes none (as a path without GSO)."""

    def __init__(self, refuse: bool = False) -> None:
        super().__init__()
        self.refuse = refuse
        self.calls: list[tuple[str, int]] = []

    def send(self, packet: bytes) -> None:
        self.calls.append(("send", len(packet)))
        super().send(packet)

    def send_segments(self, pieces: Sequence[bytes | memoryview], size: int, count: int,
                      length: int) -> bool:
        if self.refuse:
            return False
        data = b"".join(pieces)
        assert len(data) == length and -(-length // size) == count
        self.calls.append(("run", count))
        self.sent += [data[at : at + size] for at in range(0, length, size)]
        return True


def agreed_pair(devices: tuple[FakeDevice, ...], link: MemoryEndpoint
                ) -> tuple[OffloadingTunnel, OffloadingTunnel]:
    """A (over `link`) and B, both told the other takes chunks."""
    a = OffloadingTunnel(devices[0], 1472, clock=lambda: 0.0)
    b = OffloadingTunnel(devices[1], 1472, clock=lambda: 0.0)
    a.attach(link)
    b.attach(MemoryEndpoint())
    a.send(hello_frame(0x03, True))
    b.send(hello_frame(0x03, True))
    return a, b


def test_without_the_peers_hello_only_complete_packets_leave(devices: tuple[FakeDevice, ...]
                                                             ) -> None:
    device = devices[0]
    link = MemoryEndpoint()
    layer = OffloadingTunnel(device, 1472, clock=lambda: 0.0)
    layer.attach(link)
    assert link.sent == [hello_frame(0x07, False)]
    device.hand_out(VnetHeader(), tcp4(100, complete=True))
    device.hand_out(PARTIAL, tcp4(200, complete=False))
    device.hand_out(VnetHeader(NEEDS_CSUM, GSO_TCPV4, 40, 1400, 20, 16),
                    tcp4(9000, complete=False))
    device.hand_out(VnetHeader(), tcp4(2000, complete=True))
    frames = layer.receive(0)
    assert frames == [tcp4(100, complete=True), tcp4(200, complete=True)]
    assert layer.counters.drops == {drops.OFFLOAD_UNAGREED: 1, drops.MTU: 1}
    assert layer.counters.offload["peer_agreed"] == 0 and device.offloads == []
    assert "waiting" in layer.state


def test_two_layers_agree_and_carry_super_packets_whole(devices: tuple[FakeDevice, ...]) -> None:
    dev_a, dev_b = devices
    link_a, link_b = MemoryEndpoint("a"), MemoryEndpoint("b")
    a = OffloadingTunnel(dev_a, 1472, clock=lambda: 0.0)
    b = OffloadingTunnel(dev_b, 1472, clock=lambda: 0.0)
    a.attach(link_a)
    b.attach(link_b)
    for frame in link_a.sent:  # A's hello reaches B: B agrees and answers
        b.send(frame)
    assert dev_b.offloads == [TCP_OFFLOADS]  # B's kernel refused USO: TCP only
    for frame in link_b.sent:
        a.send(frame)
    assert dev_a.offloads == [TCP_OFFLOADS]  # B's kernel takes no USO writes: none for A
    assert a.state == "on (csum,tso4,tso6)"
    big = tcp4(60000, complete=False)
    tso = VnetHeader(NEEDS_CSUM, GSO_TCPV4, 40, 1432, 20, 16)
    dev_a.hand_out(tso, big)
    dev_a.hand_out(PARTIAL, tcp4(10, complete=False))
    dev_a.hand_out(VnetHeader(), tcp4(10, complete=True))
    frames = a.receive(0)
    assert all(len(frame) <= 1472 for frame in frames) and len(frames) == 41 + 1 + 1
    for frame in frames:
        assert frame_problem(frame) is None
    b.send_many(frames[:41])  # a GRO read's run: rebuilt in one step
    for frame in frames[41:]:
        b.send(frame)
    # the small packet left with a partial checksum goes whole, its checksum completed
    assert dev_b.written() == [(tso, big), (VnetHeader(), tcp4(10, complete=True)),
                               (VnetHeader(), tcp4(10, complete=True))]
    assert a.counters.offload["super_packets_read"] == 1
    assert a.counters.offload["checksums_completed"] == 1
    assert a.counters.offload["chunks_sent"] == 41
    assert b.counters.offload["chunks_received"] == 41
    assert b.counters.offload["super_packets_written"] == 1
    assert b.counters.drops == {} and b.counters.tx_bytes == len(big) + 50 + 50


def test_send_many_rebuilds_runs_and_feeds_the_rest(devices: tuple[FakeDevice, ...]) -> None:
    """Whole in-order runs, a run with a chunk missing, a reordered run, plain packets between:
    every complete packet is written once, in the order its last chunk came."""
    dev_a, dev_b = devices
    a = OffloadingTunnel(dev_a, 1472, clock=lambda: 0.0)
    b = OffloadingTunnel(dev_b, 1472, clock=lambda: 0.0)
    a.attach(MemoryEndpoint())
    b.attach(MemoryEndpoint())
    a.send(hello_frame(0x03, True))
    tso = VnetHeader(NEEDS_CSUM, GSO_TCPV4, 40, 1432, 20, 16)
    packets = [tcp4(5000 + n, complete=False) for n in range(4)]
    runs = []
    for packet in packets:
        dev_a.hand_out(tso, packet)
        runs.append(a.receive(0))
    plain = tcp4(10, complete=True)
    b.send_many([*runs[0], plain, *runs[1][:-2], runs[1][-1], *runs[2][::-1], *runs[3]])
    assert dev_b.written() == [(tso, packets[0]), (VnetHeader(), plain), (tso, packets[2]),
                               (tso, packets[3])]
    assert b.counters.drops == {}
    b.send(runs[1][-2])  # the missing chunk comes late: packet 1 is complete
    assert dev_b.written() == [(tso, packets[1])]


def test_a_peer_whose_kernel_refused_everything_gets_checksum_offload_only(
        devices: tuple[FakeDevice, ...]) -> None:
    dev_a = devices[0]
    a = OffloadingTunnel(dev_a, 1472, clock=lambda: 0.0)
    a.attach(MemoryEndpoint())
    a.send(hello_frame(0, False))
    assert dev_a.offloads == [TUN_F_CSUM]


def test_hellos_repeat_until_answered() -> None:
    now = [0.0]
    device = FakeDevice(ALL_OFFLOADS)
    try:
        link = MemoryEndpoint()
        layer = OffloadingTunnel(device, 1472, clock=lambda: now[0])
        layer.attach(link)
        layer.receive(0)
        now[0] = 1.5
        layer.receive(0)
        layer.send(tcp4(10, complete=True))  # a plain packet from the peer: no second hello yet
        assert len(link.sent) == 2
        layer.send(hello_frame(0x03, True))  # the answer: agreed, and a reply is not answered
        now[0] = 5.0
        layer.receive(0)
        assert len(link.sent) == 2
    finally:
        device.close()


def test_small_link_frames_are_refused(devices: tuple[FakeDevice, ...]) -> None:
    with pytest.raises(LinkbridgeError, match="at least 576"):
        OffloadingTunnel(devices[0], 500)


def test_frame_problem_lets_offload_frames_through_and_checks_the_rest() -> None:
    assert frame_problem(b"\x10\x00") is None and frame_problem(hello_frame(0, False)) is None
    assert frame_problem(b"\x45\x00") == "truncated"
    assert frame_problem(b"\x30" * 30) == "not_ip"  # a free type (0x2_: extension)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40).map(lambda tail: b"\x10" + tail), max_size=12))
def test_hostile_chunks_are_counted_never_raised(frames: list[bytes]) -> None:
    device = FakeDevice(ALL_OFFLOADS)
    try:
        layer = OffloadingTunnel(device, 1472, clock=lambda: 0.0)
        layer.send_many(frames)
        for frame in frames:
            layer.send(frame)
        assert all(packet_problem(packet) is None for _header, packet in device.written())
    finally:
        device.close()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.lists(st.binary(min_size=1, max_size=30).map(lambda tail: b"\x10"
                                                                             + tail),
                                   min_size=1, max_size=6),
                          st.integers(0, 40)), max_size=6))
def test_hostile_gro_reads_are_counted_never_raised(reads: list[tuple[list[bytes], int]]
                                                     ) -> None:
    """Reads of chunk-like datagrams with any segment size (a read may lie about it): every
    datagram is counted as moved, nothing raises, only well-formed packets are written."""
    device = FakeDevice(ALL_OFFLOADS)
    try:
        layer = OffloadingTunnel(device, 1472, clock=lambda: 0.0)
        runs = [(b"".join(frames), segment) for frames, segment in reads]
        moved = layer.send_runs(runs, frame_problem, Counters())
        assert moved == sum(-(-len(data) // segment) if segment else 1
                            for data, segment in runs)
        assert all(packet_problem(packet) is None for _header, packet in device.written())
    finally:
        device.close()


def test_a_super_packet_goes_to_a_gso_link_as_one_run_after_what_was_read_before(
        devices: tuple[FakeDevice, ...]) -> None:
    link = GsoLink()
    a, b = agreed_pair(devices, link)
    link.calls.clear()
    link.sent.clear()
    before, after, big = tcp4(100, complete=True), tcp4(200, complete=True), tcp4(60000,
                                                                                 complete=False)
    for header, packet in ((VnetHeader(), before), (TSO, big), (VnetHeader(), after)):
        devices[0].hand_out(header, packet)
    assert a.receive(0) == [after]  # what comes after the super-packet: for the data path
    assert a.sent_on() == 1  # the super-packet: sent on by the layer itself
    assert link.calls == [("send", len(before)), ("run", 41)]  # in the order read
    chunks = link.sent[1:]
    assert chunks == chunk_frames(TSO, big, 1472, 0)
    assert b.send_runs([(b"".join(chunks), 1472)], frame_problem, Counters()) == 41
    assert devices[1].written() == [(TSO, big)]
    assert b.counters.offload["chunks_received"] == 41


def test_a_link_that_refuses_the_run_gets_the_chunks_one_by_one(
        devices: tuple[FakeDevice, ...]) -> None:
    link = GsoLink(refuse=True)
    a, _b = agreed_pair(devices, link)
    link.sent.clear()
    big = tcp4(60000, complete=False)
    devices[0].hand_out(TSO, big)
    assert a.receive(0) == [] and a.sent_on() == 1
    assert link.sent == chunk_frames(TSO, big, 1472, 0)


def test_send_runs_writes_whole_runs_and_cuts_the_rest(devices: tuple[FakeDevice, ...]) -> None:
    """GRO reads: one packet's chunks (rebuilt whole), a run missing a chunk (cut, fed to the
    reassembler: complete once the chunk comes), a plain packet, a malformed datagram (dropped
    into the source's counters), a run of plain packets: written in order, every datagram
    counted."""
    _a, b = agreed_pair(devices, MemoryEndpoint())
    packets = [tcp4(5000 + n, complete=False) for n in range(3)]
    chunks = [chunk_frames(TSO, packet, 1472, n) for n, packet in enumerate(packets)]
    plain = tcp4(10, complete=True)
    drops_here = Counters()
    reads = [(b"".join(chunks[0]), 1472), (plain, 0), (b"".join(chunks[1][:-1]), 1472),
             (b"\x45" * 30, 0), (plain * 3, len(plain)), (b"".join(chunks[2]), 1472)]
    assert b.send_runs(reads, frame_problem, drops_here) == 4 + 1 + 3 + 1 + 3 + 4
    assert devices[1].written() == [(TSO, packets[0]), (VnetHeader(), plain),
                                    *[(VnetHeader(), plain)] * 3, (TSO, packets[2])]
    assert drops_here.drops == {drops.MALFORMED + drops.LENGTH_MISMATCH: 1}
    assert b.send_runs([(chunks[1][-1], 0)], frame_problem, drops_here) == 1
    assert devices[1].written() == [(TSO, packets[1])]


@pytest.mark.parametrize("refuse", [False, True])
def test_reads_after_a_super_packet_go_into_the_chunk_layout_with_the_same_result(
        devices: tuple[FakeDevice, ...], refuse: bool) -> None:
    """After a read cut into chunks the next read goes into the chunk layout (readv): super-
    packets, plain and partial-checksum packets in turn leave as they leave a plain read, on a
    link that takes runs and on one that refuses them (the chunks one by one)."""
    link = GsoLink(refuse=refuse)
    a, _b = agreed_pair(devices, link)
    link.sent.clear()
    big, other = tcp4(60000, complete=False), tcp4(1500, complete=False)
    plain, partial = tcp4(100, complete=True), tcp4(10, complete=False)
    reads = [(TSO, big), (TSO, other), (VnetHeader(), plain), (PARTIAL, partial), (TSO, big),
             (TSO, big), (VnetHeader(), plain)]
    expected, packet_id, laid_out = [], 0, []
    for header, packet in reads:
        devices[0].hand_out(header, packet)
        laid_out.append(a.chunked_last)
        frames: list[bytes] = []
        a.read_frames(frames)
        if header is TSO:
            expected += chunk_frames(header, packet, 1472, packet_id)
            packet_id += 1
            assert frames == []  # sent on by the layer itself
        else:
            assert frames == [tcp4(len(packet) - 40, complete=True)]
    assert laid_out == [False, True, True, False, False, True, True]
    assert link.sent == expected
    assert a.counters.offload["super_packets_read"] == 4
    assert a.counters.offload["chunks_sent"] == len(expected)
    assert a.counters.rx_packets == len(reads) and a.counters.drops == {}
    with pytest.raises(BlockingIOError):
        a.read_frames([])
