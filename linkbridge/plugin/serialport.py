"""Serial ports for links: the pyserial options a URL takes, opening the port, writing to it.

The `serial:` and `kiss:` links share these, so a port is configured the same way everywhere
(`?baud=9600&parity=E&rtscts=1`) and a busy or missing device reads the same.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import time
from collections.abc import Mapping
from typing import Any

import serial

from linkbridge.plugin.options import Option, boolean, choice, integer
from linkbridge.plugin.url import LinkUrl

DEFAULT_BAUD = 115200
SERIAL_ERRORS = (serial.SerialException, OSError, ValueError)  # what opening a port may raise


def stop_bits(text: str) -> float:
    """Parser for 1, 1.5 or 2 stop bits."""
    value = {"1": 1, "1.5": 1.5, "2": 2}.get(text)
    if value is None:
        raise ValueError("expected 1, 1.5 or 2")
    return value


SERIAL_OPTIONS = (
    Option("baud", integer(50, 4_000_000), DEFAULT_BAUD, "line speed in bit/s"),
    Option("bytesize", integer(5, 8), 8, "data bits per character"),
    Option("parity", choice("N", "E", "O", "M", "S"), "N",
           "parity: N(one), E(ven), O(dd), M(ark), S(pace)"),
    Option("stopbits", stop_bits, 1, "stop bits: 1, 1.5 or 2"),
    Option("rtscts", boolean, False, "RTS/CTS hardware flow control"),
    Option("xonxoff", boolean, False,
           "XON/XOFF software flow control (only for lines that never pass 0x11/0x13)"),
)


def url_baud(url: LinkUrl) -> int:
    """The baud rate a link URL's options ask for (SERIAL_OPTIONS' default when none; the
    registry has already checked the value): what a serial-line link's lab cable is paced at."""
    baud: int = SERIAL_OPTIONS[0].parse(url.options.get("baud", str(DEFAULT_BAUD)))
    return baud


def open_serial(device: str, config: Mapping[str, Any]) -> serial.Serial:
    """Open `device` non-blocking and exclusively with the SERIAL_OPTIONS in `config`.

    Raises one of SERIAL_ERRORS; `os_reason()` turns it into a short reason."""
    return serial.Serial(
        device, baudrate=config["baud"], bytesize=config["bytesize"],
        parity=config["parity"], stopbits=config["stopbits"],
        rtscts=config["rtscts"], xonxoff=config["xonxoff"], timeout=0, exclusive=True,
    )


def os_reason(exc: BaseException) -> str:
    """A short reason for an OS-level failure (pyserial wraps errno in SerialException)."""
    number = getattr(exc, "errno", None)
    if number in (errno.EAGAIN, errno.EWOULDBLOCK):  # pyserial's exclusive flock failed
        return "in use by another program"
    return os.strerror(number) if isinstance(number, int) else str(exc)


def write_all(fd: int, data: bytes, timeout: float) -> bool:
    """Write all of `data` to a non-blocking fd, waiting for room at most `timeout` seconds.

    Returns False when the time ran out (part of the frame may be on the line: the peer drops
    it at the next frame delimiter). pyserial's own write can report a timeout after writing
    everything.
    """
    view = memoryview(data)
    deadline = time.monotonic() + timeout
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    while view:
        with contextlib.suppress(BlockingIOError):
            view = view[os.write(fd, view):]
        if view:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            poller.poll(left * 1000)
    return True
