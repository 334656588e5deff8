"""The poller's lean loop between a real TUN device and the udp: link (linkbridge/datapath/lean.py).

In a lab namespace a TUN device with 198.19.0.1/30 stands for the tunnel and a UDP socket on
127.0.0.1 for the far end of the link. Echo requests sent from that socket to 198.19.0.1 cross
the data path into the device, the kernel answers them, and the replies come back the same way.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from linkbridge_udp import UdpLink
from pyroute2 import IPRoute

from linkbridge.datapath import lean
from linkbridge.datapath.bridge import Bridge
from linkbridge.datapath.counters import Counters
from linkbridge.datapath.datagram import DatagramEndpoint
from linkbridge.datapath.encrypting import open_layer
from linkbridge.datapath.pcap import PcapWriter, pcap_tap
from linkbridge.errors import LinkbridgeError
from linkbridge.lab import netns
from linkbridge.lab.topology import UNDERLAY, TwoHosts
from linkbridge.plugin.registry import LinkRegistry, get_plugin_manager
from linkbridge.tunnel.tun import TunEndpoint
from linkbridge.wire import drops
from linkbridge.wire.noise import public_bytes
from linkbridge.wire.packet import drop_reason, internet_checksum, packet_problem
from linkbridge.wire.secure import CIPHERS, StaticKeys, Timers
from linkbridge.wire.stack import Encrypt
from tests.helpers.namespace_state import icmp_unreachables

LOCAL = "127.0.0.1"
DEVICE_ADDRESS, FAR_ADDRESS = "198.19.0.1", "198.19.0.2"
WAIT = 20.0  # generous: the machine running the tests may be busy


def with_checksum(data: bytes, at: int) -> bytes:
    return data[:at] + internet_checksum(data).to_bytes(2, "big") + data[at + 2:]


def echo_request(seq: int, size: int = 84) -> bytes:
    """An IPv4 ICMP echo request from FAR_ADDRESS to the device's address, numbered `seq`."""
    payload = (seq.to_bytes(4, "big") * size)[: size - 28]
    icmp = with_checksum(struct.pack("!BBHHH", 8, 0, 0, 0x4C42, seq) + payload, 2)
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), seq, 0, 64, 1, 0,
                         socket.inet_aton(FAR_ADDRESS), socket.inet_aton(DEVICE_ADDRESS))
    return with_checksum(header, 10) + icmp


def answers(request: bytes, reply: bytes) -> bool:
    """Whether `reply` is the kernel's echo reply to `request` (same id, sequence, payload)."""
    return reply[9] == 1 and reply[20] == 0 and reply[24:] == request[24:]


@dataclass
class Rig:
    ns: str
    device: TunEndpoint
    link: UdpLink
    far: DatagramEndpoint  # the other end of the link

    def bridge(self) -> Bridge:
        bridge = Bridge(self.device, self.link)
        assert bridge.lean
        bridge.start()
        return bridge

    def collect(self, count: int) -> list[bytes]:
        """The next `count` IPv4 packets the far end receives (the kernel may also send IPv6
        router solicitations out of the device: those are left out)."""
        got: list[bytes] = []
        deadline = time.monotonic() + WAIT
        while len(got) < count and time.monotonic() < deadline:
            got += [packet for packet in self.far.receive(0.05) if packet[0] >> 4 == 4]
        return got


@pytest.fixture
def rig(lab: TwoHosts) -> Iterator[Rig]:
    with netns.inside(lab.a):
        device = TunEndpoint()
        with IPRoute() as ipr:
            index = ipr.link_lookup(ifname=device.name)[0]
            ipr.link("set", index=index, state="up")
            ipr.addr("add", index=index, address=DEVICE_ADDRESS, prefixlen=30)
        far = DatagramEndpoint("far", (LOCAL, 0), (LOCAL, 9), lambda source: True)
        link = LinkRegistry(get_plugin_manager()).create_link(
            f"udp:{LOCAL}:{far.local_address[1]}?bind={LOCAL}:0&mtu=1400")
        assert isinstance(link, UdpLink)
        link.open()
    far.peer = link.raw_port().sock.getsockname()
    try:
        yield Rig(lab.a, device, link, far)
    finally:
        link.close()
        far.close()
        device.close()


def test_trickles_and_bursts_come_back_intact_and_in_order(rig: Rig) -> None:
    bridge = rig.bridge()
    requests = [echo_request(seq, 84 + seq % 3 * 500) for seq in range(3000)]
    replies: list[bytes] = []
    sent = 0
    try:
        for request in requests[:20]:  # a trickle: the poller moves each packet at once
            rig.far.send(request)
            sent += 1
            replies += rig.collect(1)
        for needed in (1, 2):  # load: a direction's own thread, then back to the poller
            time.sleep(0.3)
            while bridge.hand_offs["to-tunnel"] < needed and sent < len(requests):
                burst = requests[sent : sent + 200]
                rig.far.send_many(burst)
                sent += len(burst)
                replies += rig.collect(len(burst))
            assert bridge.hand_offs["to-tunnel"] >= needed
        time.sleep(0.3)
        for request in requests[sent : sent + 20]:  # a trickle again
            rig.far.send(request)
            sent += 1
            replies += rig.collect(1)
    finally:
        bridge.close()
    assert len(replies) == sent
    assert all(answers(q, r) for q, r in zip(requests[:sent], replies, strict=True))
    link, device = rig.link.counters, rig.device.counters
    assert link.drops == {} and device.drops == {}
    assert link.rx_packets == device.tx_packets == sent
    assert link.rx_bytes == device.tx_bytes == sum(map(len, requests[:sent]))
    assert device.rx_packets == link.tx_packets >= sent
    assert device.rx_bytes == link.tx_bytes


def frames() -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, and frames one edit away from a well-formed IPv4 or IPv6 packet."""
    def near_ip(first: int, size: int, delta: int, fill: bytes) -> bytes:
        body = (fill or b"\0") * (size // max(1, len(fill)) + 1)
        length = max(0, size + delta) & 0xFFFF
        if first >> 4 == 6:
            start = bytes([first, 0, 0, 0]) + max(0, length - 40).to_bytes(2, "big")
        else:
            start = bytes([first, 0]) + length.to_bytes(2, "big")
        return (start + body)[:size]

    firsts = st.sampled_from([0x45, 0x46, 0x4F, 0x44, 0x40, 0x60, 0x65]) | st.integers(0, 255)
    return st.binary(max_size=80) | st.builds(
        near_ip, firsts, st.integers(0, 120), st.sampled_from([0, 0, 0, 1, -1, 256]),
        st.binary(max_size=8))


def test_the_inline_check_decides_as_packet_problem(rig: Rig,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lean, "HAND_OFF_PACKETS", 10**9)  # every packet through the lean loop
    bridge = rig.bridge()
    link: Counters = rig.link.counters
    device = rig.device.counters

    @settings(max_examples=60)
    @given(st.lists(frames(), min_size=1, max_size=12))
    def decides_alike(batch: list[bytes]) -> None:
        drops_before, written_before = Counter(link.drops), device.tx_packets
        device_drops_before = sum(device.drops.values())
        for frame in batch:
            rig.far.send(frame)
        deadline = time.monotonic() + WAIT

        def settled() -> int:
            return (sum(link.drops.values()) - sum(drops_before.values()) + device.tx_packets
                    - written_before + sum(device.drops.values()) - device_drops_before)

        while settled() < len(batch) and time.monotonic() < deadline:
            time.sleep(0.002)
        problems = [packet_problem(frame) for frame in batch]
        expected = Counter(drop_reason(problem) for problem in problems if problem)
        assert link.drops - drops_before == expected
        assert settled() == len(batch)

    try:
        decides_alike()
    finally:
        bridge.close()
    assert bridge.hand_offs == {"to-link": 0, "to-tunnel": 0}


def test_strangers_are_filtered_and_coalesced_runs_split(rig: Rig) -> None:
    with netns.inside(rig.ns):
        stranger = DatagramEndpoint("stranger", (LOCAL, 0), rig.far.peer, lambda source: True)
    bridge = rig.bridge()
    try:
        stranger.send_many([echo_request(seq) for seq in range(10)])  # one GSO send
        run = [echo_request(seq) for seq in range(10, 20)]
        rig.far.send_many(run)
        replies = rig.collect(len(run))
        assert all(answers(q, r) for q, r in zip(run, replies, strict=True))
        deadline = time.monotonic() + WAIT
        while rig.link.counters.drops["filtered"] < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        bridge.close()
        stranger.close()
    assert rig.link.counters.drops == {"filtered": 10}
    assert rig.link.counters.rx_packets == 10


def test_link_mtu_applies_and_wrapped_devices_take_the_generic_path(rig: Rig,
                                                                     tmp_path: Path) -> None:
    bridge = rig.bridge()
    try:
        with netns.inside(rig.ns):
            sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with sender:
            for size in (1450, 100, 1300):  # IPv4 + UDP headers add 28; the link MTU is 1400
                sender.sendto(bytes([size % 256]) * size, (FAR_ADDRESS, 9))
        got = rig.collect(2)
    finally:
        bridge.close()
    assert [len(packet) - 28 for packet in got] == [100, 1300]
    assert rig.link.counters.drops == {"mtu": 1}
    writer = PcapWriter.create(str(tmp_path / "tap.pcap"), 1 << 20)
    tapped = Bridge(pcap_tap(rig.device, writer), rig.link)
    tapped.close()
    writer.close()
    assert not tapped.lean


def test_a_far_end_not_listening_neither_stops_the_loop_nor_costs_drops(rig: Rig) -> None:
    """Each datagram to the closed port draws an ICMP port unreachable, which the socket
    connected to the peer reports as ECONNREFUSED on its next send or read."""
    far_address = rig.far.local_address
    rig.far.close()
    bridge = rig.bridge()
    try:
        with netns.inside(rig.ns):
            before = icmp_unreachables()
            sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with sender:
            for n in range(5):  # one at a time: the loop reads the refusal
                sender.sendto(bytes([n]) * 10, (FAR_ADDRESS, 9))
                deadline = time.monotonic() + WAIT
                while rig.link.counters.tx_packets <= n and time.monotonic() < deadline:
                    time.sleep(0.005)
            for n in range(20):  # back to back: sends meet the refusal of the one before
                sender.sendto(bytes([n]) * 10, (FAR_ADDRESS, 9))
            deadline = time.monotonic() + WAIT
            while rig.link.counters.tx_packets < 25 and time.monotonic() < deadline:
                time.sleep(0.005)
            with netns.inside(rig.ns):
                deadline = time.monotonic() + WAIT  # the kernel counts as its softirq answers
                while icmp_unreachables() - before < 25 and time.monotonic() < deadline:
                    time.sleep(0.005)
                assert icmp_unreachables() - before >= 25
                rig.far = DatagramEndpoint("far", far_address, (LOCAL, 9), lambda source: True)
            sender.sendto(b"heard", (FAR_ADDRESS, 9))
            got = rig.collect(1)
    finally:
        bridge.close()
        rig.far.close()
    assert [packet[28:] for packet in got] == [b"heard"]
    assert rig.link.counters.tx_packets == rig.device.counters.rx_packets >= 26  # IPv6 too
    assert rig.link.counters.drops == {}
    assert bridge.hand_offs == {"to-link": 0, "to-tunnel": 0}


def test_an_icmp_error_from_the_path_neither_stops_the_loop_nor_costs_drops(
        rig: Rig, lab: TwoHosts) -> None:
    """Host B, a router on the way to the peer, refuses the link's datagrams with ICMP
    "administratively prohibited", which the socket connected to the peer reports as
    EHOSTUNREACH on its next send or read."""
    blocked = "198.18.9.9"
    with netns.inside(lab.b), IPRoute() as ipr:
        Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")
        ipr.route("add", dst=f"{blocked}/32", type="prohibit")
    with netns.inside(lab.a), IPRoute() as ipr:
        ipr.route("add", dst=f"{blocked}/32", gateway=UNDERLAY[1])
        before = icmp_unreachables()
        link = LinkRegistry(get_plugin_manager()).create_link(f"udp:{blocked}:47000")
        link.open()
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    bridge = Bridge(rig.device, link)
    assert bridge.lean
    bridge.start()
    try:
        with sender:
            for n in range(10):
                sender.sendto(bytes([n]) * 10, (FAR_ADDRESS, 9))
                deadline = time.monotonic() + WAIT
                while (link.counters.tx_packets <= n and not bridge.stop.is_set()
                       and time.monotonic() < deadline):
                    time.sleep(0.005)
        with netns.inside(lab.a):
            assert icmp_unreachables() > before
        assert not bridge.stop.is_set()  # the loop still runs
    finally:
        bridge.close()
        link.close()
    assert link.counters.tx_packets >= 10 and link.counters.drops == {}


def test_a_socket_failing_under_the_loop_stops_it_with_an_error(rig: Rig) -> None:
    bridge = rig.bridge()
    failed = threading.Event()

    def waiter() -> None:
        with pytest.raises(LinkbridgeError, match="data path"):
            bridge.wait()
        failed.set()

    watcher = threading.Thread(target=waiter, daemon=True)
    watcher.start()
    rig.link.raw_port().sock.close()
    watcher.join(WAIT)
    bridge.close()
    assert failed.is_set()


def test_encrypted_traffic_takes_the_lean_loop_and_counts_as_the_layer_does(rig: Rig) -> None:
    """The encrypt layer over the udp: link (a SealedPort): the loop seals and opens each
    packet itself, a trickle and bursts (handed to the direction's thread and back) come back
    intact and in order, a forged frame is an `auth` drop and a sealed packet that is no IP
    packet a drop of its problem, both counted on the layer as its receive() counts them."""
    private = [X25519PrivateKey.generate() for _ in range(2)]
    options = [Encrypt(StaticKeys(private[i], public_bytes(private[1 - i]),
                                  ciphers=frozenset(CIPHERS)), Timers()) for i in range(2)]
    requests = [echo_request(seq, 84 + seq % 3 * 500) for seq in range(1000)]
    junk = b"\x45" + bytes(30)  # sealed by the peer, but its length field says 0
    with contextlib.ExitStack() as stack:
        near = open_layer(rig.link, options[0], stack)
        far = open_layer(rig.far, options[1], stack)
        bridge = Bridge(rig.device, near)
        assert bridge.lean
        bridge.start()
        stack.callback(bridge.close)

        def collect(count: int) -> list[bytes]:
            got: list[bytes] = []
            deadline = time.monotonic() + WAIT
            while len(got) < count and time.monotonic() < deadline:
                got += [packet for packet in far.receive(0.05) if packet[0] >> 4 == 4]
            return got

        replies = []
        for request in requests[:20]:  # the first waits in the far layer for the handshake
            far.send(request)
            replies += collect(1)
        assert near.channel.current is not None
        key_id = near.channel.current.local_id
        rig.far.send(bytes([0xB0 | key_id]) + b"\xff\xff\xf0" + bytes(40))  # forged
        far.send(junk)
        sent = 20
        while bridge.hand_offs["to-tunnel"] < 1 and sent < len(requests):
            far.send_many(requests[sent:sent + 200])
            replies += collect(len(requests[sent:sent + 200]))
            sent += 200
        time.sleep(0.3)  # back to the loop
        for request in requests[sent:sent + 20]:
            far.send(request)
            replies += collect(1)
        sent += 20
    assert bridge.hand_offs["to-tunnel"] >= 1
    assert all(answers(q, r) for q, r in zip(requests[:sent], replies, strict=True))
    assert len(replies) == sent
    problem = packet_problem(junk)
    assert problem is not None
    assert near.counters.drops == {drops.AUTH: 1, drop_reason(problem): 1}
    assert rig.link.counters.drops == {} and rig.device.counters.drops == {}
    assert near.counters.rx_packets == rig.device.counters.tx_packets + 1 == sent + 1
    assert near.counters.rx_bytes == sum(map(len, requests[:sent])) + len(junk)
    assert near.counters.tx_packets == rig.device.counters.rx_packets >= sent
