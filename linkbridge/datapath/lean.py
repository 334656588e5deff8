"""The shared poller's lean loop for the usual pair: a TUN device joined to a UDP socket.

With light traffic (a ping, an interactive session) a Python relay's cost per packet is the
interpreter's, and with packets milliseconds apart every hop runs with cold caches. So this loop
does per packet only what a bare relay does: one poll() wake-up, one read and one write system
call, with the counters, the link MTU and the check of packets towards the device done
inline, and with the same figures and drop reasons as the endpoints' own receive() and send()
(datagram.py, tun.py and the udp: link). No read waits for the queue to run dry.

The peer's datagrams come from the link's socket connect()ed to the peer (SocketPort.conn), read
and sent without addresses: the kernel has already filtered them, and turning a source address
into a Python string costs the per-packet path more than anything else. While this loop reads
that socket, UDP GRO is off on it, so that each read is one datagram; it is on while the
direction's thread reads it. Reads from the bound socket (strangers; every datagram where the
link accepts several sources, as the RX/TX ports do) go to a helper that looks at the source
and at coalesced runs.

Load is recognised by rate: when HAND_OFF_PACKETS packets of one direction pass in less than
HAND_OFF_WINDOW, the direction goes to its own thread (bridge.Direction), which reads in batches
and sends runs with one system call, and which hands it back when its rate falls.
"""

from __future__ import annotations

import functools
import math
import os
import select
import socket
import time
from collections.abc import Callable
from typing import NamedTuple

from linkbridge.datapath.batch import READ_SIZE
from linkbridge.datapath.counters import Counters
from linkbridge.datapath.datagram import (
    PATH_ERRORS,
    SOL_UDP,
    UDP_GRO,
    Datagram,
    coalesced,
    read_datagram,
    send_drop_reason,
)
from linkbridge.datapath.endpoint import OffloadLayer
from linkbridge.datapath.polling import Mover, hand_off_if_busy, sync_polled
from linkbridge.datapath.rawport import DevicePort, SealedPort, SocketPort
from linkbridge.wire.drops import FILTERED, MTU, QUEUE_FULL, TUN_WRITE_ERROR
from linkbridge.wire.frames import IPV4
from linkbridge.wire.offload import HELLO_LENGTH, PLAIN_DEVICE_BYTES, VNET_HDR_LEN
from linkbridge.wire.packet import drop_reason, packet_problem

HAND_OFF_PACKETS = 32  # a direction's rate is looked at every this many packets
HAND_OFF_WINDOW = 0.01  # seconds: that many packets in less time is load (3200 packets/s)
IPV4_PLAIN = IPV4 << 4 | 5  # a 20-byte IPv4 header: the first byte of nearly every packet
PLAIN_READ_TRIES = 4  # rounds plain_reads() drains a busy socket before it gives up
INF = math.inf  # OffloadLayer.next_hello once the peer answered


def plain_reads(conn: socket.socket, drain: Callable[[], None]) -> bool:
    """Turn UDP GRO off on `conn`, so that each read holds one datagram, once no run coalesced
    before is left in its queue: while anything is queued, GRO goes back on (a read then reports
    the runs it holds) and `drain` reads the queue dry. False when it did not run dry in
    PLAIN_READ_TRIES rounds (load): GRO is left on."""
    queued = select.poll()
    queued.register(conn, select.POLLIN)
    for _ in range(PLAIN_READ_TRIES):
        conn.setsockopt(SOL_UDP, UDP_GRO, 0)
        if not queued.poll(0):
            return True
        conn.setsockopt(SOL_UDP, UDP_GRO, 1)
        drain()
    return False


class PeerSide(NamedTuple):
    """How a loop reads from and sends to the peer over a SocketPort: the connected socket's
    descriptor (-1 without one: then every datagram is read off the bound socket, source and
    all, and `recv` is not called), its recv, the send towards the peer, what UDP GRO on the
    connected socket is turned back on with for the direction's thread (None: not toggled)."""

    conn_fd: int
    recv: Callable[[int], bytes]
    send: Callable[[bytes], object]
    gro_on: Callable[[], None] | None


def peer_side(link: SocketPort) -> PeerSide:
    sock, conn, peer = link.sock, link.conn, link.peer
    if conn is None:
        sendto = sock.sendto
        return PeerSide(-1, sock.recv, lambda packet: sendto(packet, peer), None)
    # GRO on conn: off while read by a loop, on for the direction's thread
    gro_on = functools.partial(conn.setsockopt, SOL_UDP, UDP_GRO, 1) if link.gro else None
    return PeerSide(conn.fileno(), conn.recv, conn.send, gro_on)


def regroup_reads(plain: bool, conn: socket.socket | None, to_device: Mover,
                  deliver: Callable[[Datagram], int]) -> bool:
    """Before a loop polls again: whether each read of `conn` now holds one datagram (see
    plain_reads()); a queue that does not run dry hands the direction to its thread."""
    if plain or conn is None or to_device.own_thread.is_set():
        return plain
    if plain_reads(conn, functools.partial(_drain, conn, deliver)):
        return True
    to_device.hand_off()
    return False


def lean_poller(device: DevicePort, link: SocketPort, to_link: Mover, to_device: Mover,
                check: Callable[[bytes], str | None], wake: int,
                stopped: Callable[[], bool], sealed: SealedPort | None = None) -> None:
    """Move both directions while they have no thread of their own, until `stopped()`.

    `wake` (an eventfd) is readable when a direction came back from its thread or the bridge is
    stopping: the loop waits for nothing else (no timeout to arm and cancel per packet).
    Packets towards the device pass `check` first (malformed ones are counted as link drops);
    with packet_problem, packets with a plain 20-byte IPv4 header whose length field
    matches are accepted without the call, which is the answer packet_problem gives for them.
    With `sealed` (the encrypt layer over `link`), each packet is sealed into its frame before
    the link and each frame opened before the check; malformed packets count on the layer.
    """
    os_read, os_write = os.read, os.write
    device_fd, read_size, device_counters = device.fd, device.read_size, device.counters
    sock, conn, mtu, link_counters = link.sock, link.conn, link.mtu, link.counters
    link_fd = sock.fileno()
    seal, open_frame = (None, None) if sealed is None else (sealed.seal, sealed.open)
    check_drop = (link_counters if sealed is None else sealed.counters).drop
    deliver = functools.partial(_deliver, accept=link.accept, check=check,
                                link_counters=link_counters, write=device.write,
                                sealed=sealed)
    conn_fd, conn_recv, send, gro_on = peer_side(link)
    movers = [(device_fd, to_link), (link_fd, to_device)]
    if conn is not None:
        movers.append((conn_fd, to_device))
    toggles_gro = gro_on is not None
    plain = not toggles_gro  # whether each read of conn holds one datagram
    plain_check = check is packet_problem
    poller = select.poll()
    poller.register(wake, select.POLLIN)
    poll = poller.poll
    registered: set[int] = set()
    to_link_count = to_device_count = 0
    to_link_since = to_device_since = time.monotonic()
    regroup = True
    while True:
        if regroup:
            regroup = False
            plain = regroup_reads(plain, conn, to_device, deliver)
            sync_polled(poller, registered, movers)
        for fd, _events in poll():
            if fd == device_fd:
                try:
                    packet = os_read(device_fd, read_size)
                except BlockingIOError:
                    continue
                device_counters.rx_packets += 1
                device_counters.rx_bytes += len(packet)
                frame = packet if seal is None else seal(packet)
                if frame is None:
                    pass  # the layer sent or queued it itself
                elif mtu is not None and len(frame) > mtu:
                    link_counters.drop(MTU)
                else:
                    try:
                        send(frame)
                    except OSError as exc:
                        _send_failed(send, frame, exc, link_counters)
                    else:
                        link_counters.tx_packets += 1
                        link_counters.tx_bytes += len(frame)
                to_link_count += 1
                if to_link_count >= HAND_OFF_PACKETS:
                    handed, to_link_since = hand_off_if_busy(to_link, to_link_since,
                                                              HAND_OFF_WINDOW)
                    regroup |= handed
                    to_link_count = 0
            elif fd == wake:
                os.eventfd_read(wake)
                if stopped():
                    return
                regroup = True
            else:  # the link's sockets
                if fd == conn_fd:
                    try:
                        data = conn_recv(READ_SIZE)
                    except BlockingIOError:
                        continue
                    except OSError as exc:
                        if exc.errno in PATH_ERRORS:
                            continue  # no datagram: news of an earlier send
                        raise
                    link_counters.rx_packets += 1
                    link_counters.rx_bytes += len(data)
                    to_device_count += 1
                    opened = data if open_frame is None else open_frame(data)
                    if opened is None:
                        pass  # a drop, a keepalive, a handshake: the layer dealt with it
                    elif not (plain_check and (size := len(opened)) >= 20
                              and opened[0] == IPV4_PLAIN
                              and (opened[2] << 8 | opened[3]) == size) \
                            and (problem := check(opened)) is not None:
                        check_drop(drop_reason(problem))
                    else:
                        try:
                            os_write(device_fd, opened)
                        except BlockingIOError:
                            device_counters.drop(QUEUE_FULL)
                        except OSError:
                            device_counters.drop(TUN_WRITE_ERROR)
                        else:
                            device_counters.tx_packets += 1
                            device_counters.tx_bytes += len(opened)
                else:
                    to_device_count += _read_bound(sock, deliver)
                if to_device_count >= HAND_OFF_PACKETS:
                    handed, to_device_since = hand_off_if_busy(to_device, to_device_since,
                                                               HAND_OFF_WINDOW, gro_on)
                    if handed:
                        regroup, plain = True, not toggles_gro
                    to_device_count = 0


def _one_frame(frames: list[bytes], send_many: Callable[[list[bytes]], None]) -> bytes | None:
    """The frame of `frames` for the loop to send: the only one; None when there is none, or
    when there are several, which `send_many` has sent."""
    if len(frames) == 1:
        return frames[0]
    if frames:
        send_many(frames)
    return None


def _send_failed(send: Callable[[bytes], object], packet: bytes, exc: OSError,
                 counters: Counters) -> None:
    """Count a send that failed with `exc`, or send again where the error may be news of an
    earlier datagram: a connected socket reports an ICMP error (a port unreachable from the
    peer's host, a packet filtered on the way...) on its next call. A second failure counts."""
    if exc.errno in PATH_ERRORS:
        try:
            send(packet)
        except OSError as again:
            exc = again
        else:
            counters.sent(len(packet))
            return
    counters.drop(send_drop_reason(exc))


def _read_bound(sock: socket.socket, deliver: Callable[[Datagram], int]) -> int:
    """One read the lean loop leaves to this (from the bound socket, or from the peer's while
    GRO is on): moves or drops it; returns the number of packets read (0: none)."""
    read = read_datagram(sock)
    return 0 if read is None else deliver(read)


def _drain(sock: socket.socket, deliver: Callable[[Datagram], int]) -> None:
    """Read a socket until a read yields nothing, moving or dropping what it holds."""
    while _read_bound(sock, deliver):
        pass


def _deliver(read: Datagram, *, accept: Callable[[tuple[str, int]], bool],
             check: Callable[[bytes], str | None], link_counters: Counters,
             write: Callable[[bytes], None], sealed: SealedPort | None = None) -> int:
    """Write the packets of one read (a run of them where UDP GRO coalesced it) into the
    device (`write`), opened by `sealed` first when given, or drop them as the loop would;
    returns the number of datagrams read."""
    pieces = coalesced(read.data, read.ancillary)
    link_counters.coalesced_read(len(pieces))
    if not accept(read.source):
        link_counters.drop(FILTERED, len(pieces))
        return len(pieces)
    for piece in pieces:
        link_counters.received(len(piece))
    packets, drops = (pieces, link_counters) if sealed is None else (sealed.open_many(pieces),
                                                                     sealed.counters)
    for packet in packets:
        problem = check(packet)
        if problem is not None:
            drops.drop(drop_reason(problem))
        else:
            write(packet)
    return len(pieces)


def offload_poller(device: OffloadLayer, link: SocketPort,
                   send_many: Callable[[list[bytes]], None], to_link: Mover, to_device: Mover,
                   check: Callable[[bytes], str | None], wake: int,
                   stopped: Callable[[], bool]) -> None:
    """lean_poller() for a TUN device with offloads (`--offload`, docs/offload.md): one read of
    the device gives one frame, sent on the socket connected to the peer, or a super-packet's
    chunks, sent in one GSO run by `send_many`; what the link's sockets deliver goes to the
    layer's send(). A packet without offload work (its virtio_net_hdr empty; a plain IPv4
    packet from the peer) is moved inline, as lean_poller() moves it. UDP GRO on the peer's
    socket and the hand-offs of loaded directions are as there."""
    os_read, os_writev, clock = os.read, os.writev, time.monotonic
    device_fd, link_counters = device.fileno(), link.counters
    device_counters, frames_of, plain_limit = device.counters, device.frames_of, device.frame_size
    read_frames = device.read_frames
    read_size = READ_SIZE + VNET_HDR_LEN
    sock, conn = link.sock, link.conn
    write = device.send
    deliver = functools.partial(_deliver, accept=link.accept, check=check,
                                link_counters=link_counters, write=write)
    conn_fd, conn_recv, send, gro_on = peer_side(link)
    movers = [(device_fd, to_link), (sock.fileno(), to_device)]
    if conn is not None:
        movers.append((conn_fd, to_device))
    plain = gro_on is None
    poller = select.poll()
    poller.register(wake, select.POLLIN)
    registered: set[int] = set()
    to_link_count = to_device_count = 0
    to_link_since = to_device_since = time.monotonic()
    regroup = True
    while True:
        if regroup:
            regroup = False
            plain = regroup_reads(plain, conn, to_device, deliver)
            sync_polled(poller, registered, movers)
        for fd, _events in poller.poll():
            if fd == device_fd:
                frames: list[bytes]
                try:
                    if device.chunked_last:  # a transfer's super-packets: into the chunk layout
                        frames = []
                        read_frames(frames)
                        data = None
                    else:
                        data = os_read(device_fd, read_size)
                except BlockingIOError:
                    continue
                if device.next_hello < INF and clock() >= device.next_hello:
                    device.hello()  # (no clock read per packet once the peer answered)
                if data is None:
                    frame = _one_frame(frames, send_many)
                elif (size := len(data) - VNET_HDR_LEN) <= plain_limit \
                        and data.startswith(PLAIN_DEVICE_BYTES):
                    frame = data[VNET_HDR_LEN:]  # no header: sent as it is
                    device_counters.rx_packets += 1
                    device_counters.rx_bytes += size
                else:
                    frames = []
                    frames_of(data, frames)
                    frame = _one_frame(frames, send_many)
                if frame is not None:
                    try:
                        send(frame)
                    except OSError as exc:
                        _send_failed(send, frame, exc, link_counters)
                    else:
                        link_counters.tx_packets += 1
                        link_counters.tx_bytes += len(frame)
                to_link_count += 1
                if to_link_count >= HAND_OFF_PACKETS:
                    handed, to_link_since = hand_off_if_busy(to_link, to_link_since,
                                                              HAND_OFF_WINDOW)
                    regroup |= handed
                    to_link_count = 0
            elif fd == wake:
                os.eventfd_read(wake)
                if stopped():
                    return
                regroup = True
            else:
                if fd == conn_fd and plain:
                    try:
                        frame = conn_recv(READ_SIZE)
                    except BlockingIOError:
                        continue
                    except OSError as exc:
                        if exc.errno in PATH_ERRORS:
                            continue
                        raise
                    size = len(frame)
                    link_counters.rx_packets += 1
                    link_counters.rx_bytes += size
                    if size != HELLO_LENGTH and size >= 20 and frame[0] == IPV4_PLAIN \
                            and (frame[2] << 8 | frame[3]) == size:
                        try:  # a plain IPv4 packet, as lean_poller() writes it
                            os_writev(device_fd, (PLAIN_DEVICE_BYTES, frame))
                        except BlockingIOError:
                            device_counters.drop(QUEUE_FULL)
                        except OSError:
                            device_counters.drop(TUN_WRITE_ERROR)
                        else:
                            device_counters.tx_packets += 1
                            device_counters.tx_bytes += size
                    elif (problem := check(frame)) is not None:
                        link_counters.drop(drop_reason(problem))
                    else:
                        write(frame)
                    to_device_count += 1
                else:
                    to_device_count += _read_bound(sock if conn is None or fd != conn_fd
                                                   else conn, deliver)
                if to_device_count >= HAND_OFF_PACKETS:
                    handed, to_device_since = hand_off_if_busy(to_device, to_device_since,
                                                               HAND_OFF_WINDOW, gro_on)
                    if handed:
                        regroup, plain = True, gro_on is None
                    to_device_count = 0
