"""Measurements across the lab tunnel, in Python: ICMP echo (ping) and a checked TCP transfer."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from linkbridge.lab import netns
from linkbridge.wire.packet import internet_checksum

ICMP_ECHO_REQUEST = 8
ICMP_ECHO_REPLY = 0
ICMPV6_ECHO_REQUEST = 128
ICMPV6_ECHO_REPLY = 129


def family(address: str) -> socket.AddressFamily:
    """AF_INET or AF_INET6 for an address literal."""
    return socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET


def echo_request(ident: int, seq: int, payload: bytes) -> bytes:
    """An ICMP echo request with a correct checksum."""
    header = struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, 0, ident, seq)
    checksum = internet_checksum(header + payload)
    return struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, checksum, ident, seq) + payload


def echo_reply_seq(packet: bytes, ident: int) -> int | None:
    """The sequence number of an IPv4 packet carrying an echo reply for `ident`, else None."""
    if len(packet) < 20:
        return None
    offset = (packet[0] & 0x0F) * 4
    if len(packet) < offset + 8:
        return None
    kind, _code, _sum, reply_ident, seq = struct.unpack_from("!BBHHH", packet, offset)
    if kind != ICMP_ECHO_REPLY or reply_ident != ident:
        return None
    return int(seq)


def echo_request_v6(ident: int, seq: int, payload: bytes) -> bytes:
    """An ICMPv6 echo request; the kernel fills in the checksum (it covers a pseudo-header)."""
    return struct.pack("!BBHHH", ICMPV6_ECHO_REQUEST, 0, 0, ident, seq) + payload


def echo_reply_seq_v6(message: bytes, ident: int) -> int | None:
    """The sequence number of an ICMPv6 echo reply for `ident` (raw sockets get no IP header)."""
    if len(message) < 8:
        return None
    kind, _code, _sum, reply_ident, seq = struct.unpack_from("!BBHHH", message)
    if kind != ICMPV6_ECHO_REPLY or reply_ident != ident:
        return None
    return int(seq)


@dataclass
class PingResult:
    sent: int = 0
    rtts_ms: list[float] = field(default_factory=list)
    # per echo request: its send time (time.perf_counter()) and RTT in ms, None when lost
    timeline: list[tuple[float, float | None]] = field(default_factory=list)

    @property
    def received(self) -> int:
        return len(self.rtts_ms)

    @property
    def loss_percent(self) -> float:
        return 100.0 * (self.sent - self.received) / self.sent if self.sent else 0.0


def ping(ns_name: str, destination: str, count: int = 10, interval: float = 0.05,
         size: int = 56, timeout: float = 1.0) -> PingResult:
    """Send `count` echo requests from namespace `ns_name`, one at a time, and time the replies.

    `destination` may be IPv4 (ICMP) or IPv6 (ICMPv6).
    """
    v6 = family(destination) == socket.AF_INET6
    request, reply_seq = ((echo_request_v6, echo_reply_seq_v6) if v6
                          else (echo_request, echo_reply_seq))
    with netns.inside(ns_name):
        sock = (socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) if v6
                else socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
    result = PingResult()
    ident = os.getpid() & 0xFFFF
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    with sock:
        for seq in range(count):
            start = time.perf_counter()
            sock.sendto(request(ident, seq, payload), (destination, 0))
            result.sent += 1
            result.timeline.append((start, None))
            deadline = start + timeout
            while (left := deadline - time.perf_counter()) > 0:
                sock.settimeout(left)
                try:
                    packet = sock.recv(65535)
                except TimeoutError:
                    break
                if reply_seq(packet, ident) == seq:
                    result.rtts_ms.append((time.perf_counter() - start) * 1000)
                    result.timeline[-1] = (start, result.rtts_ms[-1])
                    break
            time.sleep(interval)
    return result


@dataclass
class TransferResult:
    sent_bytes: int
    received_bytes: int
    seconds: float
    intact: bool

    @property
    def mbit_per_s(self) -> float:
        return self.received_bytes * 8 / self.seconds / 1e6 if self.seconds else 0.0


def pattern(size: int, seed: int = 1) -> bytes:
    """Deterministic non-repeating-looking content for transfers (a SHA-256 stream)."""
    blocks, digest = [], seed.to_bytes(8, "big")
    for _ in range(-(-size // 32)):
        digest = hashlib.sha256(digest).digest()
        blocks.append(digest)
    return b"".join(blocks)[:size]


@dataclass
class _Received:
    size: int = 0
    digest: bytes = b""
    end: float = 0.0


def tcp_transfer(server_ns: str, server_address: str, client_ns: str, size: int,
                 port: int = 5201, timeout: float = 60.0,
                 on_progress: Callable[[int], None] | None = None) -> TransferResult:
    """Send `size` bytes over TCP from client_ns to server_ns and check the content by hash.

    `on_progress(bytes received so far)` is called as data arrives (e.g. Progress.update).
    """
    data = pattern(min(size, 1 << 20))
    expected = hashlib.sha256()
    for offset in range(0, size, len(data)):
        expected.update(data[: size - offset])
    with netns.inside(server_ns):
        listener = socket.create_server((server_address, port), family=family(server_address))
    received = _Received()

    def serve() -> None:
        listener.settimeout(timeout)
        conn, _ = listener.accept()
        digest = hashlib.sha256()
        with conn:
            conn.settimeout(timeout)
            while chunk := conn.recv(1 << 16):
                digest.update(chunk)
                received.size += len(chunk)
                if on_progress is not None:
                    on_progress(received.size)
        received.digest = digest.digest()
        received.end = time.perf_counter()

    server = threading.Thread(target=serve, daemon=True)
    view = memoryview(data)
    with listener:
        server.start()
        with netns.inside(client_ns):
            client = socket.socket(family(server_address), socket.SOCK_STREAM)
        start = time.perf_counter()
        sent = 0
        with client:
            client.settimeout(timeout)
            client.connect((server_address, port))
            while sent < size:
                offset = sent % len(data)
                sent += client.send(view[offset : min(len(data), offset + size - sent)])
        server.join(timeout)
    seconds = received.end - start if received.end else 0.0
    return TransferResult(sent, received.size, seconds, received.digest == expected.digest())


@dataclass
class FloodResult:
    sent: int
    received: int
    seconds: float

    @property
    def received_per_s(self) -> float:
        return self.received / self.seconds if self.seconds else 0.0

    @property
    def loss_percent(self) -> float:
        return 100.0 * (self.sent - self.received) / self.sent if self.sent else 0.0


def udp_flood(sender_ns: str, receiver_ns: str, destination: str, size: int = 64,
              duration: float = 1.0, port: int = 5300) -> FloodResult:
    """Send `size`-byte UDP datagrams as fast as possible for `duration` s; count arrivals."""
    with netns.inside(receiver_ns):
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with netns.inside(sender_ns):
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    received = 0
    done = threading.Event()

    def count() -> None:
        nonlocal received
        receiver.settimeout(0.5)
        while True:
            try:
                receiver.recv(65535)
            except TimeoutError:
                if done.is_set():
                    return
                continue
            received += 1

    with receiver, sender:
        receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        receiver.bind((destination, port))
        counter = threading.Thread(target=count, daemon=True)
        counter.start()
        payload = bytes(size)
        sent = 0
        start = time.perf_counter()
        end = start + duration
        while time.perf_counter() < end:
            for _ in range(64):
                try:
                    sender.sendto(payload, (destination, port))
                    sent += 1
                except OSError:  # ENOBUFS under overload: the datagram was not sent
                    pass
        seconds = time.perf_counter() - start
        done.set()
        counter.join()
    return FloodResult(sent, received, seconds)
