"""The `serial:` link: packets as SLIP frames (RFC 1055) over a serial port, through pyserial.

Plain SLIP by default, so any SLIP peer (a kernel `slattach` interface, a microcontroller) can
be the other end; `?crc=1` adds a CRC-16 trailer to every frame so line noise is detected and
dropped instead of delivered. When the device goes away (a USB adapter pulled out) the link logs
it once, drops what is sent meanwhile (counted as `unplugged`), reopens the port with backoff and
carries on by itself: the tunnel stays up. With `?wait=1` a device that is absent at start is
waited for the same way, so the tunnel can start before the adapter is plugged in.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import serial

from linkbridge.plugin import (
    ConfigError,
    Link,
    LinkError,
    LinkUrl,
    Option,
    ReportsLoss,
    boolean,
    drops,
    hookimpl,
    integer,
)
from linkbridge.plugin.codecs import crc16, packet_problem, slip
from linkbridge.plugin.lab import SERIAL_BITS_PER_BYTE, LabDirection, LabSides, serial_cable_pair
from linkbridge.plugin.serialport import (
    SERIAL_ERRORS,
    SERIAL_OPTIONS,
    open_serial,
    os_reason,
    url_baud,
    write_all,
)

log = logging.getLogger("linkbridge.serial")

DEFAULT_MTU = 1006  # RFC 1055's suggested SLIP MTU
READ_SIZE = 65536
FIRST_RETRY = 0.05  # seconds before the first reopen attempt after the device went away
MAX_RETRY = 1.0  # the backoff between reopen attempts never grows past this
PORT_BUFFER = 4096  # bytes a tty driver typically queues on the way out


class SerialLink(ReportsLoss, Link):
    """SLIP over a serial port; survives the device disappearing and coming back."""

    scheme = "serial"
    summary = "packets as SLIP frames over a serial port (optional CRC-16 per frame)"
    target_help = "DEVICE (e.g. /dev/ttyUSB0)"
    options = (
        *SERIAL_OPTIONS,
        Option("crc", boolean, False, "append a CRC-16 to every frame; damaged frames are dropped "
                                      "(both ends must agree; plain SLIP peers do not)"),
        Option("mtu", integer(68, 65535), DEFAULT_MTU, "largest packet carried"),
        Option("wait", boolean, False,
               "when the device is absent (or cannot be opened) at start, start anyway and "
               "open it when it appears, as after an unplug (otherwise: an error)"),
    )
    drop_reasons: ClassVar[Mapping[str, str]] = {**slip.REASONS, **crc16.REASONS}

    def __init__(self, target: str, options: Mapping[str, Any]) -> None:
        super().__init__(target, options)
        if not target:
            raise ConfigError("link serial: needs a device, e.g. serial:/dev/ttyUSB0?baud=115200")
        self.baud: int = self.config["baud"]
        self.crc: bool = self.config["crc"]
        self._max_frame = self.config["mtu"] + (crc16.TRAILER if self.crc else 0)
        line_time = (PORT_BUFFER + 2 * self._max_frame + 2) * 10 / self.baud
        self._write_timeout = max(1.0, 2 * line_time)
        self._decoder = self._new_decoder()
        self._port: serial.Serial | None = None
        self._write_lock = threading.Lock()
        self._lost = threading.Event()  # set by either direction when the device fails
        self._lost_at = 0.0
        self._retry_at = 0.0
        self._retry_delay = FIRST_RETRY

    @property
    def mtu(self) -> int | None:
        value: int = self.config["mtu"]
        return value

    def _new_decoder(self) -> slip.SlipDecoder | crc16.CrcChecked:
        decoder = slip.SlipDecoder(self._max_frame, errors=self.counters.drops,
                                   first_frame=self._whole_packet)
        return crc16.CrcChecked(decoder, self.counters.drops) if self.crc else decoder

    def _whole_packet(self, frame: bytes) -> bool:
        """A peer that frames packets as `packet END` (RFC 1055 allows it) sends its first
        without a leading END: deliver it when it is a whole IP packet (CRC checked first)."""
        packet = crc16.strip_crc(frame) if self.crc else frame
        return packet is not None and packet_problem(packet) is None

    def _open_port(self) -> serial.Serial:
        port = open_serial(self.target, self.config)
        port.reset_input_buffer()  # stale input from before the open is not part of any frame
        return port

    def open(self) -> None:
        try:
            self._port = self._open_port()
        except SERIAL_ERRORS as exc:
            if not self.config["wait"]:
                raise LinkError(f"{self.name}: cannot open {self.target}: "
                                f"{os_reason(exc)}") from None
            log.warning("%s: cannot open %s yet (%s); waiting for it", self.name, self.target,
                        os_reason(exc))
            with self._write_lock:
                self._device_lost(os_reason(exc), quiet=True)

    def send(self, packet: bytes) -> None:
        if len(packet) > self.config["mtu"]:
            self.counters.drop(drops.MTU)
            return
        frame = slip.encode(crc16.append_crc(packet) if self.crc else packet)
        with self._write_lock:
            port = self._port
            if port is None or self._lost.is_set():
                self.counters.drop(drops.UNPLUGGED)
                return
            try:
                written = write_all(port.fileno(), frame, self._write_timeout)
            except OSError as exc:
                self._device_lost(os_reason(exc))
                self.counters.drop(drops.UNPLUGGED)
                return
        if not written:
            self.counters.drop(drops.WRITE_TIMEOUT)  # flow control held the line too long
            return
        self.counters.sent(len(packet))

    def receive(self, timeout: float) -> list[bytes]:
        port = self._port
        if port is None or self._lost.is_set():
            self._reopen(timeout)
            return []
        try:
            poller = select.poll()  # not select(): descriptors may be numbered past 1023
            poller.register(port.fileno(), select.POLLIN)
            if not poller.poll(timeout * 1000):
                return []
            data = os.read(port.fileno(), READ_SIZE)
        except BlockingIOError:
            return []
        except OSError as exc:
            with self._write_lock:
                self._device_lost(os_reason(exc))
            return []
        if not data:  # readable yet empty: the other end of the tty hung up
            with self._write_lock:
                self._device_lost("hung up")
            return []
        packets = self.report_loss(self._decoder.feed(data))
        for packet in packets:
            self.counters.received(len(packet))
        return packets

    def _device_lost(self, reason: str, quiet: bool = False) -> None:
        """Either direction saw the device fail (caller holds the write lock): log once
        (unless `quiet`: the caller told the story).

        The receiving direction then reopens the port.
        """
        if self._lost.is_set():
            return
        self._lost_at = time.monotonic()
        self._retry_at = self._lost_at + FIRST_RETRY
        self._retry_delay = FIRST_RETRY
        self._lost.set()
        if quiet:
            return
        log.warning("%s: device lost (%s); the tunnel stays up, reopening %s with backoff",
                    self.name, reason, self.target)

    def _reopen(self, timeout: float) -> None:
        """Close the failed port and try to open it again once the backoff allows."""
        with self._write_lock:
            if self._port is not None:
                with contextlib.suppress(serial.SerialException, OSError):
                    self._port.close()
                self._port = None
        now = time.monotonic()
        if now < self._retry_at:
            time.sleep(min(timeout, self._retry_at - now))
            return
        try:
            port = self._open_port()
        except SERIAL_ERRORS as exc:
            log.debug("%s: reopen failed: %s", self.name, os_reason(exc))
            self._retry_at = time.monotonic() + self._retry_delay
            self._retry_delay = min(2 * self._retry_delay, MAX_RETRY)
            return
        self._decoder = self._new_decoder()  # the old stream ended mid-frame, maybe
        with self._write_lock:
            self._port = port
            self._lost.clear()
        log.warning("%s: device back after %.1f s, traffic resumes", self.name,
                    time.monotonic() - self._lost_at)

    def close(self) -> None:
        with self._write_lock:
            if self._port is not None:
                with contextlib.suppress(serial.SerialException, OSError):
                    self._port.close()
                self._port = None

    @classmethod
    @contextlib.contextmanager
    def lab_pair(cls, url: LinkUrl, sides: LabSides) -> Iterator[tuple[LinkUrl, LinkUrl]]:
        """Join the lab hosts with a pty pair paced at the URL's baud (both see /dev/pts)."""
        with serial_cable_pair(url, sides, url_baud(url)) as pair:
            yield pair

    @classmethod
    def lab_configured(cls, url: LinkUrl) -> tuple[LabDirection, LabDirection] | None:
        """The lab cable's rate, both ways: 8 of every 10 line bits (8N1) carry packet bytes;
        each frame adds two ENDs (and a 2-byte CRC with crc=1); escapes are not counted."""
        crc = boolean(url.options.get("crc", "0"))
        direction = LabDirection(rate=url_baud(url) * 8 / SERIAL_BITS_PER_BYTE,
                                 overhead=2 + (crc16.TRAILER if crc else 0))
        return direction, direction


@hookimpl
def linkbridge_register_links() -> list[type[Link]]:
    return [SerialLink]
