"""The shared poller's lean loop for the usual pair: a TUN device joined to a UDP socket.

With light traffic (a ping, an interactive session) a Python relay's cost per packet is the
interpreter's, and with packets milliseconds apart every hop runs with cold caches. So this loop
does per packet only what a bare relay does: one poll() wake-up, one read and one write system
call, with the counters, the source filter, the link MTU and the check of packets towards the
device done inline, and with the same figures and drop reasons as the endpoints' own receive()
and send() (datagram.py, tun.py and the udp: link). No read waits for the queue to run dry.
A read that holds a coalesced run (UDP GRO) or comes from a stranger goes to a helper.

Load is recognised by rate: when HAND_OFF_PACKETS packets of one direction pass in less than
HAND_OFF_WINDOW, the direction goes to its own thread (datapath.Direction), which reads in batches
and sends runs with one system call, and which hands it back when its rate falls.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from linkbridge.counters import Counters
from linkbridge.datagram import GRO_CMSG_SPACE, MAX_DATAGRAM, gro_segment, send_drop_reason
from linkbridge.packet import packet_problem
from linkbridge.rawport import DevicePort, SocketPort
from linkbridge.segments import split_run

HAND_OFF_PACKETS = 32  # a direction's rate is looked at every this many packets
HAND_OFF_WINDOW = 0.01  # seconds: that many packets in less time is load (3200 packets/s)
IPV4_PLAIN = 0x45  # version 4 with a 20-byte header: the first byte of nearly every packet


class Mover(Protocol):
    """What a poller needs of a direction (datapath.Direction): whose turn it is to move it."""

    own_thread: threading.Event

    def hand_off(self) -> None: ...


def sync_polled(poller: select.poll, registered: set[int],
                movers: Iterable[tuple[int, Mover]]) -> None:
    """Make `poller` watch exactly the descriptors of the movers without a thread of their own;
    `registered` is what it watches now and is kept up to date."""
    for fd, mover in movers:
        wanted = not mover.own_thread.is_set()
        if wanted and fd not in registered:
            poller.register(fd, select.POLLIN)
            registered.add(fd)
        elif not wanted and fd in registered:
            poller.unregister(fd)
            registered.discard(fd)


def hand_off_if_busy(mover: Mover, since: float) -> tuple[bool, float]:
    """After HAND_OFF_PACKETS packets: hand `mover` to its thread if they came in less than
    HAND_OFF_WINDOW since `since`. Returns (handed off, the start of the next count)."""
    now = time.monotonic()
    if now - since < HAND_OFF_WINDOW:
        mover.hand_off()
        return True, now
    return False, now


def lean_poller(device: DevicePort, link: SocketPort, to_link: Mover, to_device: Mover,
                check: Callable[[bytes], str | None], wake: int,
                stopped: Callable[[], bool], poll_interval: float) -> None:
    """Move both directions while they have no thread of their own, until `stopped()`.

    `wake` (an eventfd) is readable when a direction came back from its thread or the bridge is
    stopping. Packets towards the device pass `check` first (malformed ones are counted as link
    drops); with packet_problem, packets with a plain 20-byte IPv4 header whose length field
    matches are accepted without the call, which is the answer packet_problem gives for them.
    """
    os_read, os_write = os.read, os.write
    device_fd, read_size, device_counters = device.fd, device.read_size, device.counters
    sock = link.sock
    link_fd, recvmsg, recvfrom, sendto = sock.fileno(), sock.recvmsg, sock.recvfrom, sock.sendto
    peer, accept, gro, mtu = link.peer, link.accept, link.gro, link.mtu
    link_counters = link.counters
    plain_check = check is packet_problem
    poller = select.poll()
    poller.register(wake, select.POLLIN)
    poll = poller.poll
    movers = ((device_fd, to_link), (link_fd, to_device))
    registered: set[int] = set()
    wait_ms = poll_interval * 1000
    to_link_count = to_device_count = 0
    to_link_since = to_device_since = time.monotonic()
    regroup = True
    while True:
        if regroup:
            regroup = False
            sync_polled(poller, registered, movers)
        ready = poll(wait_ms)
        if not ready and stopped():
            return
        for fd, _events in ready:
            if fd == device_fd:
                try:
                    packet = os_read(device_fd, read_size)
                except BlockingIOError:
                    continue
                size = len(packet)
                device_counters.rx_packets += 1
                device_counters.rx_bytes += size
                if mtu is not None and size > mtu:
                    link_counters.drop("mtu")
                else:
                    try:
                        sendto(packet, peer)
                    except OSError as exc:
                        link_counters.drop(send_drop_reason(exc))
                    else:
                        link_counters.tx_packets += 1
                        link_counters.tx_bytes += size
                to_link_count += 1
                if to_link_count >= HAND_OFF_PACKETS:
                    handed, to_link_since = hand_off_if_busy(to_link, to_link_since)
                    regroup |= handed
                    to_link_count = 0
            elif fd == link_fd:
                try:
                    if gro:
                        data, ancillary, _flags, source = recvmsg(MAX_DATAGRAM, GRO_CMSG_SPACE)
                    else:
                        data, source = recvfrom(MAX_DATAGRAM)
                        ancillary = None
                except BlockingIOError:
                    continue
                if ancillary or (source != peer and not accept(source[:2])):
                    to_device_count += _strange_read(data, ancillary, source[:2], accept,
                                                     check, link_counters, device_fd,
                                                     device_counters)
                else:
                    size = len(data)
                    link_counters.rx_packets += 1
                    link_counters.rx_bytes += size
                    if not (plain_check and size >= 20 and data[0] == IPV4_PLAIN
                            and (data[2] << 8 | data[3]) == size) \
                            and (problem := check(data)) is not None:
                        link_counters.drop(f"malformed_{problem}")
                    else:
                        try:
                            os_write(device_fd, data)
                        except BlockingIOError:
                            device_counters.drop("queue_full")
                        except OSError:
                            device_counters.drop("tun_write_error")
                        else:
                            device_counters.tx_packets += 1
                            device_counters.tx_bytes += size
                    to_device_count += 1
                if to_device_count >= HAND_OFF_PACKETS:
                    handed, to_device_since = hand_off_if_busy(to_device, to_device_since)
                    regroup |= handed
                    to_device_count = 0
            else:  # the wake-up eventfd
                os.eventfd_read(wake)
                if stopped():
                    return
                regroup = True


def _strange_read(data: bytes, ancillary: list[tuple[int, int, bytes]] | None,
                  source: tuple[str, int], accept: Callable[[tuple[str, int]], bool],
                  check: Callable[[bytes], str | None], link_counters: Counters, device_fd: int,
                  device_counters: Counters) -> int:
    """A read the lean loop leaves to this: a coalesced run of datagrams (UDP GRO) or one from
    a stranger. Moves or drops it as the loop would; returns the number of packets read."""
    segment = gro_segment(ancillary) if ancillary else 0
    pieces = split_run(data, segment) if segment else [data]
    if not accept(source):
        link_counters.drop("filtered", len(pieces))
        return len(pieces)
    for packet in pieces:
        link_counters.received(len(packet))
        problem = check(packet)
        if problem is not None:
            link_counters.drop(f"malformed_{problem}")
            continue
        try:
            os.write(device_fd, packet)
        except BlockingIOError:
            device_counters.drop("queue_full")
        except OSError:
            device_counters.drop("tun_write_error")
        else:
            device_counters.sent(len(packet))
    return len(pieces)
