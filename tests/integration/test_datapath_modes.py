"""The data path over real loopback sockets: packets stay intact and in order while directions move
between the shared poller and their own threads, with wrapped endpoints, and on a fatal error."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from linkbridge.datapath.bridge import Bridge
from linkbridge.datapath.counters import Counters
from linkbridge.datapath.datagram import DatagramEndpoint, exact_peer
from linkbridge.errors import LinkError

LOCAL = "127.0.0.1"
WAIT = 20.0  # generous: the machine running the tests may be busy


def ipv4_packet(seq: int, size: int) -> bytes:
    """A well-formed IPv4 header (length field = size) followed by a numbered payload."""
    header = bytes([0x45, 0]) + size.to_bytes(2, "big") + bytes(16)
    body = seq.to_bytes(4, "big") * ((size - 20) // 4 + 1)
    return header + body[: size - 20]


class Peer:
    """A plain UDP socket standing in for the kernel behind the tunnel, or for the far side."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind((LOCAL, 0))
        self.sock.settimeout(0.2)
        self.address: tuple[str, int] = self.sock.getsockname()
        self.got: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def _collect(self) -> None:
        while not self._stop.is_set():
            try:
                self.got.append(self.sock.recv(65535))
            except TimeoutError:
                continue
            except OSError:
                return

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + WAIT
        while len(self.got) < count and time.monotonic() < deadline:
            time.sleep(0.005)
        assert len(self.got) >= count, f"{len(self.got)} of {count} packets arrived"

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


class Unpollable:
    """A wrapper like pcap/fragmentation ones: no fileno(), so its direction has a thread."""

    def __init__(self, inner: DatagramEndpoint, fail_after: int | None = None) -> None:
        self.inner = inner
        self.name = f"wrapped {inner.name}"
        self.counters: Counters = inner.counters
        self.fail_after = fail_after

    def send(self, packet: bytes) -> None:
        if self.fail_after is not None and self.inner.counters.tx_packets >= self.fail_after:
            raise LinkError(f"{self.name}: device gone")
        self.inner.send(packet)

    def receive(self, timeout: float) -> list[bytes]:
        return self.inner.receive(timeout)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def peers() -> Iterator[tuple[Peer, Peer]]:
    kernel, remote = Peer(), Peer()
    yield kernel, remote
    kernel.close()
    remote.close()


def endpoints(kernel: Peer, remote: Peer) -> tuple[DatagramEndpoint, DatagramEndpoint]:
    tunnel = DatagramEndpoint("tunnel", (LOCAL, 0), kernel.address, exact_peer(kernel.address))
    link = DatagramEndpoint("link", (LOCAL, 0), remote.address, exact_peer(remote.address))
    return tunnel, link


def send(peer: Peer, to: tuple[str, int], packets: list[bytes]) -> None:
    for packet in packets:
        peer.sock.sendto(packet, to)


def test_bursts_and_trickles_arrive_intact_and_in_order(peers: tuple[Peer, Peer]) -> None:
    kernel, remote = peers
    tunnel, link = endpoints(kernel, remote)
    sizes = (20, 84, 576, 1472)
    outbound = [ipv4_packet(seq, sizes[seq % 4]) for seq in range(6000)]
    inbound = [ipv4_packet(seq, sizes[(seq + 1) % 4]) for seq in range(3000)]
    send(kernel, tunnel.local_address, outbound[:200])  # queued before start: a full first read
    bridge = Bridge(tunnel, link)
    bridge.start()
    try:
        remote.wait_for(200)
        assert bridge.hand_offs["to-link"] >= 1
        time.sleep(0.3)  # idle: the direction goes back to the shared poller
        sent = 200
        for packet in outbound[200:220]:  # a trickle, one packet at a time, both directions
            send(kernel, tunnel.local_address, [packet])
            send(remote, link.local_address, [inbound[sent - 200]])
            sent += 1
            remote.wait_for(sent)
        burst = 500
        while bridge.hand_offs["to-link"] < 2 and sent < len(outbound):  # load again
            send(kernel, tunnel.local_address, outbound[sent : sent + burst])
            sent = min(len(outbound), sent + burst)
        send(remote, link.local_address, inbound[20:])
        remote.wait_for(sent)
        kernel.wait_for(len(inbound))
        assert bridge.hand_offs["to-link"] >= 2, "the direction was never handed back"
    finally:
        bridge.close()
        tunnel.close()
        link.close()
    assert remote.got == outbound[:sent]
    assert kernel.got == inbound
    assert link.counters.drops == {} and tunnel.counters.drops == {}


def test_a_wrapped_link_without_fileno_still_carries_both_ways(peers: tuple[Peer, Peer]) -> None:
    kernel, remote = peers
    tunnel, link = endpoints(kernel, remote)
    bridge = Bridge(tunnel, Unpollable(link))
    bridge.start()
    try:
        outbound = [ipv4_packet(seq, 100) for seq in range(300)]
        inbound = [ipv4_packet(seq, 60) for seq in range(300)]
        send(kernel, tunnel.local_address, outbound)
        send(remote, link.local_address, [b"\x45junk", *inbound])
        remote.wait_for(len(outbound))
        kernel.wait_for(len(inbound))
    finally:
        bridge.close()
        tunnel.close()
        link.close()
    assert remote.got == outbound
    assert kernel.got == inbound
    assert link.counters.drops == {"malformed_truncated": 1}


def test_a_fatal_error_in_a_polled_direction_is_reraised(peers: tuple[Peer, Peer]) -> None:
    kernel, remote = peers
    tunnel, link = endpoints(kernel, remote)
    bridge = Bridge(tunnel, Unpollable(link, fail_after=5))
    bridge.start()
    failed = threading.Event()

    def waiter() -> None:
        with pytest.raises(LinkError, match="device gone"):
            bridge.wait()
        failed.set()

    watcher = threading.Thread(target=waiter, daemon=True)
    watcher.start()
    try:
        send(kernel, tunnel.local_address, [ipv4_packet(seq, 100) for seq in range(10)])
        watcher.join(WAIT)
    finally:
        bridge.close()
        tunnel.close()
        link.close()
    assert failed.is_set()
    assert len(remote.got) == 5
