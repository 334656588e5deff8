"""UDP GSO on send and GRO on receive over real loopback sockets: byte-identical datagrams."""

from __future__ import annotations

import contextlib
import random
import select
import socket
import struct
import time
from collections.abc import Iterator

import pytest
from pyroute2 import IPRoute

from linkbridge.datapath import lean
from linkbridge.datapath.batch import READ_SIZE
from linkbridge.datapath.datagram import (
    GRO_CMSG_SPACE,
    SOL_UDP,
    UDP_GRO,
    UDP_SEGMENT,
    DatagramEndpoint,
    coalesced,
)
from linkbridge.lab import netns
from linkbridge.lab.topology import UNDERLAY, TwoHosts
from linkbridge.plugin import free_port
from linkbridge.wire.offload import (
    GSO_TCPV4,
    NEEDS_CSUM,
    VnetHeader,
    chunk_runs,
    coalesced_packet,
    run_frames,
    single_run_packet,
)

LOCAL = "127.0.0.1"


def mixed_batch(rng: random.Random, count: int) -> list[bytes]:
    """Runs of equal sizes with odd ones between, as a tunnel's reads look under load."""
    packets: list[bytes] = []
    while len(packets) < count:
        size = rng.choice([1, 40, 92, 576, 1400, 1472])
        packets += [rng.randbytes(size) for _ in range(rng.randint(1, 80))]
    return packets[:count]


def drain(endpoint: DatagramEndpoint, count: int, wait: float = 10.0) -> list[bytes]:
    got: list[bytes] = []
    deadline = time.monotonic() + wait
    while len(got) < count and time.monotonic() < deadline:
        got += endpoint.receive(0.05)
    return got


@pytest.mark.parametrize("peer_only", [True, False], ids=["peer-socket", "source-filter"])
def test_send_many_reaches_a_gro_endpoint_and_a_plain_socket_unchanged(peer_only: bool) -> None:
    """The receiver takes the runs on its socket connected to the sender, or (with a filter
    of its own) on its bound socket."""
    rng = random.Random(7)
    plain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    plain.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    plain.bind((LOCAL, 0))
    sender_address = (LOCAL, free_port())
    receiver = DatagramEndpoint("rx", (LOCAL, 0), sender_address,
                                None if peer_only else (lambda source: True))
    to_receiver = DatagramEndpoint("tx", sender_address, receiver.local_address)
    to_plain = DatagramEndpoint("tx2", (LOCAL, 0), plain.getsockname(), lambda source: True)
    try:
        for _round in range(5):
            batch = mixed_batch(rng, 300)
            to_receiver.send_many(batch)
            assert drain(receiver, len(batch)) == batch
            to_plain.send_many(batch)
            plain.settimeout(5)
            assert [plain.recv(65535) for _ in batch] == batch
        assert to_receiver.counters.tx_packets == 1500 == receiver.counters.rx_packets
        assert to_receiver.counters.tx_bytes == receiver.counters.rx_bytes
        # the offloads really happened: runs went out in one call each and came in coalesced
        sent, got = to_receiver.counters.offload, receiver.counters.offload
        assert 0 < sent["gso_sends"] < sent["gso_packets"] <= 1500, sent
        assert 0 < got["gro_reads"] < got["gro_packets"] <= 1500, got
        assert to_receiver.counters.as_dict()["offload"] == dict(sorted(sent.items()))
        assert receiver.counters.drops == {} and to_receiver.counters.drops == {}
    finally:
        for endpoint in (receiver, to_receiver, to_plain):
            endpoint.close()
        plain.close()


def test_a_super_packets_chunks_leave_gathered_and_come_back_as_one_read() -> None:
    """The offload layer's path over real sockets: a super-packet's chunks as pieces (header
    and payload slices) in one gathering GSO send, read back whole by receive_runs() and
    rebuilt from that read; receive() cuts the same into the chunks."""
    receiver = DatagramEndpoint("rx", (LOCAL, 0), (LOCAL, free_port()))
    sender = DatagramEndpoint("tx", receiver.peer, receiver.local_address)
    size = single_run_packet(1472)
    packet = struct.pack("!BBH", 0x45, 0, size) + random.Random(1).randbytes(size - 4)
    header = VnetHeader(NEEDS_CSUM, GSO_TCPV4, 40, 1420, 20, 16)
    try:
        for take in (receiver.receive_runs, receiver.receive):
            (run,) = chunk_runs(header, packet, 1472, 3)
            assert sender.send_segments(run[0], 1472, run[1], run[2])
            got: list[object] = []
            deadline = time.monotonic() + 5
            while not got and time.monotonic() < deadline:
                got = list(take(0.05))
            if take == receiver.receive_runs:
                assert got == [(b"".join(run[0]), 1472)]
                assert coalesced_packet(b"".join(run[0]), 1472) == (header, packet)
            else:
                assert got == run_frames(run)
        assert sender.counters.offload == {"gso_sends": 2, "gso_packets": 88}
        assert receiver.counters.offload == {"gro_reads": 2, "gro_packets": 88}
        assert sender.counters.tx_packets == 88 == receiver.counters.rx_packets
        assert sender.counters.tx_bytes == 2 * run[2] == receiver.counters.rx_bytes
    finally:
        receiver.close()
        sender.close()


def test_coalesced_datagrams_from_a_refused_source_are_counted_per_packet() -> None:
    receiver = DatagramEndpoint("rx", (LOCAL, 0), (LOCAL, 9))
    stranger = DatagramEndpoint("stranger", (LOCAL, 0), receiver.local_address,
                                lambda source: True)
    try:
        stranger.send_many([b"z" * 100] * 10)
        deadline = time.monotonic() + 5
        while sum(receiver.counters.drops.values()) < 10 and time.monotonic() < deadline:
            assert receiver.receive(0.05) == []
        assert receiver.counters.drops == {"filtered": 10}
        assert receiver.counters.rx_packets == 0
    finally:
        receiver.close()
        stranger.close()


def test_runs_too_big_for_the_route_fall_back_to_one_datagram_each(lab: TwoHosts) -> None:
    """GSO cannot fragment: a run with segments above the path MTU is refused by the kernel and
    sent one datagram per call instead (fragmented by IP like any large datagram)."""
    with netns.inside(lab.a), IPRoute() as ipr:
        ipr.link("set", index=ipr.link_lookup(ifname=lab.veth_a)[0], mtu=1000)
    with netns.inside(lab.b):
        receiver = DatagramEndpoint("rx", (UNDERLAY[1], 47100), (UNDERLAY[0], 47100))
    with netns.inside(lab.a):
        sender = DatagramEndpoint("tx", (UNDERLAY[0], 47100), (UNDERLAY[1], 47100))
    try:
        small = [bytes([n]) * 500 for n in range(20)]  # fits: one segmented send
        large = [bytes([n]) * 1400 for n in range(20)]  # above the MTU: refused, then one by one
        sender.send_many(small)
        sender.send_many(large)
        assert drain(receiver, 40) == small + large
        assert sender.counters.tx_packets == 40 and sender.counters.drops == {}
        # the small run went out as one segmented send, the refused large one did not count
        assert sender.counters.offload == {"gso_sends": 1, "gso_packets": 20}
    finally:
        sender.close()
        receiver.close()


@pytest.fixture
def connected_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A socket with UDP GRO on, connected to a sender that sends it runs (UDP GSO)."""
    reader = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with reader, sender:
        reader.bind((LOCAL, 0))
        sender.bind((LOCAL, 0))
        reader.connect(sender.getsockname())
        sender.connect(reader.getsockname())
        reader.setsockopt(SOL_UDP, UDP_GRO, 1)
        reader.setblocking(False)
        yield reader, sender


def send_run(sender: socket.socket, packets: list[bytes]) -> None:
    segment = struct.pack("=H", len(packets[0]))
    sender.sendmsg([b"".join(packets)], [(SOL_UDP, UDP_SEGMENT, segment)])


def wait_readable(sock: socket.socket) -> None:
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    assert poller.poll(5000)


def test_plain_reads_turns_gro_off_once_no_run_is_left_queued(
        connected_pair: tuple[socket.socket, socket.socket]) -> None:
    """A run queued while GRO was on is read with it on (as its datagrams), and only then is
    it off: every later read holds one datagram, even of a run sent in one call."""
    reader, sender = connected_pair
    run = [b"a" * 100, b"b" * 100, b"c" * 40]
    send_run(sender, run)
    wait_readable(reader)
    drained: list[bytes] = []

    def drain() -> None:
        with contextlib.suppress(BlockingIOError):
            while True:
                data, ancillary, _flags, _source = reader.recvmsg(READ_SIZE, GRO_CMSG_SPACE)
                drained.extend(coalesced(data, ancillary))

    assert lean.plain_reads(reader, drain)
    assert drained == run
    assert reader.getsockopt(SOL_UDP, UDP_GRO) == 0
    send_run(sender, run)
    wait_readable(reader)
    assert [reader.recv(READ_SIZE) for _ in run] == run


def test_plain_reads_leaves_gro_on_for_a_socket_that_never_runs_dry(
        connected_pair: tuple[socket.socket, socket.socket]) -> None:
    reader, sender = connected_pair
    send_run(sender, [b"x" * 50] * 4)
    wait_readable(reader)
    rounds: list[int] = []

    def drain() -> None:  # reads, but more has come in meanwhile: load
        rounds.append(len(reader.recv(READ_SIZE)))
        sender.send(b"more")
        wait_readable(reader)

    assert not lean.plain_reads(reader, drain)
    assert len(rounds) == lean.PLAIN_READ_TRIES
    assert reader.getsockopt(SOL_UDP, UDP_GRO) == 1
