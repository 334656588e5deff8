"""Measurements across the lab tunnel, in Python: ICMP echo (ping) and a checked TCP transfer."""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import socket
import statistics
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


def socket_address(destination: str) -> tuple[str, int] | tuple[str, int, int, int]:
    """The address to send an ICMP message to: a scoped IPv6 literal (fe80::1%DEV, ff02::1%DEV)
    with its interface's index, looked up in the current namespace."""
    address, _, scope = destination.partition("%")
    return (address, 0, 0, socket.if_nametoindex(scope)) if scope else (destination, 0)


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
    rtts_ms: list[float] = field(default_factory=list)  # every reply's, late ones included
    # per echo request: its send time (time.perf_counter()) and RTT in ms, None when lost
    timeline: list[tuple[float, float | None]] = field(default_factory=list)
    late: int = 0  # replies that came after their request's wait: received, not lost
    wait: float = 0.0  # seconds each request waited for its reply

    @property
    def received(self) -> int:
        return len(self.rtts_ms)

    @property
    def loss_percent(self) -> float:
        return 100.0 * (self.sent - self.received) / self.sent if self.sent else 0.0


class _Replies:
    """The echo requests sent so far and the replies read for them, on one raw socket."""

    def __init__(self, sock: socket.socket, ident: int, v6: bool, result: PingResult) -> None:
        self.sock = sock
        self.ident = ident
        self.reply_seq = echo_reply_seq_v6 if v6 else echo_reply_seq
        self.result = result
        self.waiting: dict[int, float] = {}  # seq -> send time, for requests not answered yet

    def sent(self, seq: int, start: float) -> None:
        self.result.sent += 1
        self.result.timeline.append((start, None))
        self.waiting[seq] = start

    def read_until(self, end: float, answered: int | None = None) -> None:
        """Read replies until `end`, or until request `answered` has its reply, or (None)
        until no request waits any more."""
        while (answered in self.waiting if answered is not None else self.waiting) and \
                (left := end - time.perf_counter()) > 0:
            self.sock.settimeout(left)
            try:
                packet = self.sock.recv(65535)
            except TimeoutError:
                return
            arrived = time.perf_counter()
            seq = self.reply_seq(packet, self.ident)
            if seq is None or seq not in self.waiting:
                continue  # another ident's, or a duplicate of one answered already
            start = self.waiting.pop(seq)
            rtt = (arrived - start) * 1000
            self.result.rtts_ms.append(rtt)
            self.result.timeline[seq] = (start, rtt)
            if arrived - start > self.result.wait:
                self.result.late += 1


def ping(ns_name: str, destination: str, count: int = 10, interval: float = 0.05,
         size: int = 56, timeout: float = 1.0, spacing: float = 0.0,
         linger: float = 0.0) -> PingResult:
    """Send `count` echo requests from namespace `ns_name`, one at a time, and time the replies.

    Each request waits up to `timeout` for its reply, then `interval` more, and goes at least
    `spacing` after the one before (a round trip on a half-duplex link, so that a request does
    not meet the previous reply on the air). A reply that comes after its request's wait, while
    a later one waits or within `linger` after the last wait, counts as late: received, not
    lost. `destination` may be IPv4 (ICMP) or IPv6 (ICMPv6), scoped (fe80::1%DEV) too.
    """
    v6 = family(destination) == socket.AF_INET6
    with netns.inside(ns_name):
        sock = (socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) if v6
                else socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
        target = socket_address(destination)
    result = PingResult(wait=timeout)
    ident = os.getpid() & 0xFFFF
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    request = echo_request_v6 if v6 else echo_request
    with sock:
        replies = _Replies(sock, ident, v6, result)
        next_send = time.perf_counter()
        for seq in range(count):
            replies.read_until(next_send)  # late replies, timed as they come
            time.sleep(max(0.0, next_send - time.perf_counter()))
            start = time.perf_counter()
            sock.sendto(request(ident, seq, payload), target)
            replies.sent(seq, start)
            replies.read_until(start + timeout, answered=seq)
            next_send = max(time.perf_counter() + interval, start + spacing)
        replies.read_until(time.perf_counter() + linger)
    return result


def multicast_ping(ns_name: str, destination: str, count: int = 1, interval: float = 1.0,
                   linger: float = 1.0) -> dict[str, set[int]]:
    """Send `count` ICMPv6 echo requests to a multicast group on a device (ff02::1%DEV) from
    namespace `ns_name`, `interval` seconds apart, as `ping -6 -c COUNT -i INTERVAL` does, and
    read every reply until `linger` seconds after the last request: for each address that
    answered, the sequence numbers it answered."""
    with netns.inside(ns_name):
        sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        target = socket_address(destination)
    ident, start = os.getpid() & 0xFFFF, time.monotonic()
    answered: dict[str, set[int]] = {}
    with sock:
        for seq in range(count):
            sock.sendto(echo_request_v6(ident, seq, b"all nodes"), target)
            end = start + (seq + 1) * interval if seq + 1 < count else time.monotonic() + linger
            while (left := end - time.monotonic()) > 0:
                sock.settimeout(left)
                try:
                    message, source = sock.recvfrom(2048)
                except TimeoutError:
                    break
                if (answer := echo_reply_seq_v6(message, ident)) is not None:
                    answered.setdefault(source[0].split("%")[0], set()).add(answer)
    return answered


@dataclass
class TransferResult:
    size: int  # bytes the transfer was to carry
    sent_bytes: int  # bytes the sender handed to TCP
    received_bytes: int
    seconds: float  # from connecting to the last byte, or to where the transfer stopped
    arrived_intact: bool  # what arrived is the start of what was sent, unchanged
    stopped: str = ""  # why the transfer ended before all bytes arrived ("": it did not)
    limited: bool = False  # it stopped at the caller's time limit

    @property
    def complete(self) -> bool:
        return self.received_bytes == self.size and not self.stopped

    @property
    def intact(self) -> bool:
        """All of it arrived, unchanged."""
        return self.complete and self.arrived_intact

    @property
    def ok(self) -> bool:
        """All of it arrived intact, or what arrived before the caller's time limit did."""
        return self.arrived_intact and (self.complete or self.limited)

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


def stream_digest(data: bytes, size: int) -> bytes:
    """SHA-256 of the first `size` bytes of `data` repeated (what a transfer sends)."""
    digest = hashlib.sha256()
    for offset in range(0, size, len(data)):
        digest.update(data[: size - offset])
    return digest.digest()


class _Budget:
    """The time a transfer may take: `stall` seconds without progress, and `limit` in all."""

    def __init__(self, stall: float, limit: float | None) -> None:
        self.stall = stall
        self.limit = limit
        self.start = time.perf_counter()
        self.at_limit = f"stopped at the {limit:g} s limit" if limit is not None else ""

    def wait(self) -> float:
        """A socket timeout for the next step; TimeoutError once the limit has passed."""
        left = self.stall if self.limit is None else min(
            self.stall, self.start + self.limit - time.perf_counter())
        if left <= 0:
            raise TimeoutError
        return left

    def reason(self) -> str:
        """Why a step timed out: the limit or a stall."""
        if self.limit is not None and time.perf_counter() - self.start >= self.limit:
            return self.at_limit
        return f"no progress for {self.stall:g} s"


@dataclass
class _Received:
    size: int = 0
    digest: bytes = b""
    end: float = 0.0
    stopped: str = ""


def tcp_transfer(server_ns: str, server_address: str, client_ns: str, size: int,
                 port: int = 5201, timeout: float = 60.0,
                 on_progress: Callable[[int], None] | None = None,
                 limit: float | None = None, congestion: str | None = None) -> TransferResult:
    """Send `size` bytes over TCP from client_ns to server_ns and check the content by hash.

    The transfer stops when no data moves for `timeout` seconds, or after `limit` seconds in
    all; it then reports what arrived, how long it took and why it stopped, never raises.
    `on_progress(bytes received so far)` is called as data arrives (e.g. Progress.update).
    `congestion` names the sender's TCP congestion control (None: the host's default).
    """
    data = pattern(min(size, 1 << 20))
    with netns.inside(server_ns):
        listener = socket.create_server((server_address, port), family=family(server_address))
    received = _Received()

    def serve() -> None:
        digest = hashlib.sha256()
        try:
            listener.settimeout(budget.wait())
            conn, _ = listener.accept()
            with conn:
                while True:
                    conn.settimeout(budget.wait())
                    chunk = conn.recv(1 << 16)
                    if not chunk:
                        break
                    digest.update(chunk)
                    received.size += len(chunk)
                    if on_progress is not None:
                        on_progress(received.size)
        except TimeoutError:
            received.stopped = budget.reason()
        except OSError as exc:
            received.stopped = f"receiver: {exc.strerror or exc}"
        received.digest = digest.digest()
        received.end = time.perf_counter()

    server = threading.Thread(target=serve, daemon=True)
    view = memoryview(data)
    sent, stopped = 0, ""
    budget = _Budget(timeout, limit)
    with listener:
        server.start()
        with netns.inside(client_ns):
            client = socket.socket(family(server_address), socket.SOCK_STREAM)
        if congestion is not None:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, congestion.encode())
        with client:
            try:
                client.settimeout(budget.wait())
                client.connect((server_address, port))
                while sent < size:
                    client.settimeout(budget.wait())
                    offset = sent % len(data)
                    sent += client.send(view[offset : min(len(data), offset + size - sent)])
            except TimeoutError:
                stopped = budget.reason()
            except OSError as exc:
                stopped = f"sender: {exc.strerror or exc}"
            if stopped:  # reset the connection: nothing left in the buffers keeps going
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                with contextlib.suppress(OSError):
                    listener.shutdown(socket.SHUT_RDWR)  # an accept() still waiting ends
        server.join()
    stopped = stopped or received.stopped
    return TransferResult(size, sent, received.size, received.end - budget.start,
                          received.digest == stream_digest(data, received.size), stopped,
                          limited=bool(stopped) and stopped == budget.at_limit)


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


STAMP = struct.Struct("!Id")  # a stream packet's sequence number and send time (monotonic)


@dataclass
class StreamResult:
    """What a stream of `sent` packets delivered: each arrival's one-way delay (s), once (the
    lab's hosts share the machine's monotonic clock)."""

    sent: int
    delays: dict[int, float] = field(default_factory=dict)

    @property
    def delivered(self) -> float:
        return len(self.delays) / self.sent if self.sent else 0.0

    @property
    def median(self) -> float:
        return statistics.median(self.delays.values()) if self.delays else float("inf")

    def quantile(self, q: float) -> float:
        """The delay `q` of the arrivals are within (1.0: the longest)."""
        ordered = sorted(self.delays.values())
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def udp_stream(sender_ns: str, receiver_ns: str, destination: str, count: int,
               rate: float, size: int, port: int = 5310, linger: float = 15.0) -> StreamResult:
    """Send `count` UDP datagrams of `size` bytes at `rate` per second; wait `linger` s for
    late ones (a repair layer's hold) after the last."""
    with netns.inside(receiver_ns):
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with netns.inside(sender_ns):
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    result = StreamResult(count)
    done = threading.Event()

    def receive() -> None:
        receiver.settimeout(0.2)
        while not done.is_set():
            try:
                data = receiver.recv(65535)
            except TimeoutError:
                continue
            if len(data) >= STAMP.size:
                seq, sent_at = STAMP.unpack_from(data)
                result.delays.setdefault(seq, time.monotonic() - sent_at)

    with receiver, sender:
        receiver.bind((destination, port))
        listener = threading.Thread(target=receive, daemon=True)
        listener.start()
        start = time.monotonic()
        for seq in range(count):
            time.sleep(max(0.0, start + seq / rate - time.monotonic()))
            payload = STAMP.pack(seq, time.monotonic())
            sender.sendto(payload + bytes(size - len(payload)), (destination, port))
        time.sleep(linger)
        done.set()
        listener.join()
    return result
