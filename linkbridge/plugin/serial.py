"""Serial ports for stream links: the port options a URL takes, opening the port, the write
deadline a line's speed needs, and the lab's paced cable. Imported only by plugins that use a
serial port (it needs pyserial; `linkbridge.plugin` does not).

`SerialLine` is the StreamLink of a serial device: a plugin derives from it and adds its framing
(`serial:` SLIP, `kiss:` KISS), so every port is configured (`?baud=9600&parity=E&rtscts=1`),
opened, waited for and reopened after an unplug the same way.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator, Mapping
from typing import Any

import serial

from linkbridge.errors import ConfigError
from linkbridge.plugin.lab import LabSides
from linkbridge.plugin.options import Option, boolean, choice, integer
from linkbridge.plugin.streamlink import Stream, StreamLink
from linkbridge.plugin.url import LinkUrl
from linkbridge.wire import drops

DEFAULT_BAUD = 115200
PORT_BUFFER = 4096  # bytes a tty driver typically queues on the way out
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
    Option("wait", boolean, False,
           "when the device is absent (or cannot be opened) at start, start anyway and open "
           "it when it appears, as after an unplug (otherwise: an error)"),
)


def url_baud(url: LinkUrl) -> int:
    """The baud rate a link URL's options ask for (SERIAL_OPTIONS' default when none; the
    registry has already checked the value): what a serial-line link's lab cable is paced at."""
    baud: int = SERIAL_OPTIONS[0].parse(url.options.get("baud", str(DEFAULT_BAUD)))
    return baud


def open_serial(device: str, config: Mapping[str, Any]) -> serial.Serial:
    """Open `device` non-blocking and exclusively with the SERIAL_OPTIONS in `config`.

    Raises one of SERIAL_ERRORS."""
    return serial.Serial(
        device, baudrate=config["baud"], bytesize=config["bytesize"],
        parity=config["parity"], stopbits=config["stopbits"],
        rtscts=config["rtscts"], xonxoff=config["xonxoff"], timeout=0, exclusive=True,
    )


def line_write_timeout(baud: int, max_frame: int) -> float:
    """How long a write may wait for room on a line at `baud`: twice the time the port's
    buffer and two of the largest frames (with their delimiters) take, at least 1 s."""
    line_time = (PORT_BUFFER + 2 * max_frame + 4) * 10 / baud
    return max(1.0, 2 * line_time)


@contextlib.contextmanager
def serial_cable_pair(url: LinkUrl, sides: LabSides,
                      baud: int) -> Iterator[tuple[LinkUrl, LinkUrl]]:
    """A serial-line link's lab pair: the lab's paced pty cable at `baud`, its two ends as the
    targets of side A's and side B's URL. A URL with a target of its own is refused."""
    if url.target:
        raise ConfigError("the lab joins its hosts with its own paced pty pair; give options "
                          f"only (e.g. {url.scheme}:?baud={baud})")
    with sides.serial_cable(baud) as (path_a, path_b):
        yield url.with_target(path_a), url.with_target(path_b)


class SerialLine(StreamLink):
    """A StreamLink over the serial device named by the target, with SERIAL_OPTIONS (splice
    them into `options`). A send while the device is away counts as `unplugged`; `?wait=1`
    starts without the device. Set `write_timeout` with line_write_timeout() once the largest
    frame is known. The lab joins two of them with its paced pty cable."""

    lost_drop = drops.UNPLUGGED
    stream_kind = "device"

    def __init__(self, target: str, options: Mapping[str, Any]) -> None:
        if not target:
            raise ConfigError(f"link {self.scheme}: needs a device, e.g. "
                              f"{self.scheme}:/dev/ttyUSB0?baud=9600")
        super().__init__(target, options)
        self.wait_for_peer = bool(self.config.get("wait"))

    def open_stream(self) -> Stream:
        try:
            port = open_serial(self.target, self.config)
        except serial.SerialException as exc:
            if getattr(exc, "errno", None) in (errno.EAGAIN, errno.EWOULDBLOCK):  # flock failed
                raise OSError("in use by another program") from None
            raise
        port.reset_input_buffer()  # stale input from before the open is not part of any frame
        return Stream.of(port)

    @classmethod
    @contextlib.contextmanager
    def lab_pair(cls, url: LinkUrl, sides: LabSides) -> Iterator[tuple[LinkUrl, LinkUrl]]:
        """Join the lab hosts with a pty pair paced at the URL's baud (both see /dev/pts)."""
        with serial_cable_pair(url, sides, url_baud(url)) as pair:
            yield pair
