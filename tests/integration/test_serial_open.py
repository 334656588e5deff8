"""The serial: link at open, on a real pty: what a SLIP peer sent first arrives (RFC 1055's
`packet END` framing), input from before the open is flushed, and the configured line settings
reach the tty (tcgetattr). Byte size and parity a pty does not keep: the VM's emulated UART
checks those (tests/helpers/vm_serial.py)."""

from __future__ import annotations

import contextlib
import os
import struct
import termios
import time
from collections.abc import Iterator

import pytest

from linkbridge.framing import slip
from linkbridge.plugin.link import Link
from linkbridge.plugin.registry import LinkRegistry, get_plugin_manager


def udp_packet(payload: bytes) -> bytes:
    """An IPv4/UDP packet 198.18.0.1 -> 198.18.0.2 carrying `payload` (lengths right)."""
    udp = struct.pack("!HHHH", 4000, 4001, 8 + len(payload), 0) + payload
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                       bytes([198, 18, 0, 1]), bytes([198, 18, 0, 2])) + udp


@contextlib.contextmanager
def pty_pair() -> Iterator[tuple[int, str]]:
    """(the peer's end, the device path the link opens), raw on the peer's side."""
    peer, device = os.openpty()
    path = os.ttyname(device)
    attrs = termios.tcgetattr(peer)
    attrs[3] = 0  # lflag: no echo, no canonical mode
    attrs[1] = 0  # oflag: no output processing
    termios.tcsetattr(peer, termios.TCSANOW, attrs)
    try:
        yield peer, path
    finally:
        os.close(peer)
        os.close(device)


@contextlib.contextmanager
def opened(url: str) -> Iterator[Link]:
    link = LinkRegistry(get_plugin_manager()).create_link(url)
    link.open()
    try:
        yield link
    finally:
        link.close()


def receive(link: Link, count: int, timeout: float = 3.0) -> list[bytes]:
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got += link.receive(0.1)
    return got


@pytest.mark.parametrize("crc", [False, True])
def test_first_packet_without_leading_end_arrives(crc: bool) -> None:
    """A peer framing `packet END` (no leading END): its first packet is delivered, not counted
    as slip_garbage; stale bytes written before the open are flushed, not mistaken for it."""
    from linkbridge.framing import crc16

    first, second = udp_packet(b"\xc0first\xdb" * 20), udp_packet(b"second")
    with pty_pair() as (peer, path):
        os.write(peer, b"stale line noise from before the open")
        time.sleep(0.05)
        with opened(f"serial:{path}?crc={int(crc)}") as link:
            for packet in (first, second):
                body = crc16.append_crc(packet) if crc else packet
                os.write(peer, slip.encode(body)[1:])  # `packet END`: RFC 1055's minimal framing
            assert receive(link, 2) == [first, second]
            assert link.counters.drops.get("slip_garbage", 0) == 0


def test_first_bytes_that_are_no_packet_are_garbage() -> None:
    with pty_pair() as (peer, path), opened(f"serial:{path}") as link:
        os.write(peer, b"noise\xc0" + slip.encode(udp_packet(b"x")))
        assert receive(link, 1) == [udp_packet(b"x")]
        assert link.counters.drops["slip_garbage"] == 1


@pytest.mark.parametrize(("query", "speed", "stop2", "rtscts", "xonxoff"), [
    ("baud=9600", termios.B9600, False, False, False),
    ("baud=115200&stopbits=2&rtscts=1", termios.B115200, True, True, False),
    ("baud=57600&xonxoff=1", termios.B57600, False, False, True),
])
def test_line_settings_reach_the_tty(query: str, speed: int, stop2: bool, rtscts: bool,
                                     xonxoff: bool) -> None:
    with pty_pair() as (_peer, path), opened(f"serial:{path}?{query}"):
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)  # the settings belong to the tty itself
        try:
            iflag, _oflag, cflag, _lflag, ispeed, ospeed, _cc = termios.tcgetattr(fd)
        finally:
            os.close(fd)
    assert (ispeed, ospeed) == (speed, speed)
    assert bool(cflag & termios.CSTOPB) is stop2
    assert bool(cflag & termios.CRTSCTS) is rtscts
    assert bool(iflag & termios.IXON) is xonxoff and bool(iflag & termios.IXOFF) is xonxoff
