"""The `kiss:` (serial TNC) and `kiss+tcp:` (soft TNC over TCP) links: thin I/O glue around the
KISS codec (linkbridge.plugin.kiss), the payload modes (payload.py) and a reconnecting stream.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

from linkbridge.plugin import (
    ConfigError,
    Link,
    LinkUrl,
    Option,
    ReportsLoss,
    boolean,
    choice,
    drops,
    duration,
    host_port,
    integer,
)
from linkbridge.plugin.codecs import kiss
from linkbridge.plugin.lab import SERIAL_BITS_PER_BYTE, LabDirection, LabSides, serial_cable_pair
from linkbridge.plugin.reconnect import ReconnectingStream, StreamHandle
from linkbridge.plugin.serialport import SERIAL_OPTIONS, open_serial, url_baud
from linkbridge_kiss import arp, tnc
from linkbridge_kiss.ax25 import BROADCAST, Callsign
from linkbridge_kiss.payload import (
    ARP_ANSWERED,
    MAX_OVERHEAD,
    REASONS,
    Ax25Mode,
    EthernetMode,
    PayloadMode,
    RawMode,
    TunHeaderMode,
)

log = logging.getLogger("linkbridge.kiss")

DEFAULT_MTU = 256  # AX.25's usual packet length; what most TNCs and LoRa modems take
CONNECT_TIMEOUT = 2.0
PORT_BUFFER = 4096  # bytes a tty driver typically queues on the way out
MODES = ("raw", "ax25", "tun", "ethernet")


def mac_address(text: str) -> bytes:
    """Option parser: a MAC address aa:bb:cc:dd:ee:ff."""
    parts = text.split(":")
    try:
        value = bytes(int(part, 16) for part in parts)
    except ValueError:
        value = b""
    if len(parts) != 6 or len(value) != 6 or any(len(part) != 2 for part in parts):
        raise ValueError("expected a MAC address such as 02:00:00:00:00:01")
    return value


def callsign(text: str) -> Callsign:
    return Callsign.parse(text)


KISS_OPTIONS = (
    Option("mode", choice(*MODES), "raw",
           "what a frame carries: raw (the IP packet), ax25 (AX.25 UI frames, PID 0xCC), "
           "tun (tncattach, point-to-point), ethernet (tncattach --ethernet)"),
    Option("call", callsign, None, "our callsign with mode=ax25, e.g. N0CALL-1"),
    Option("peer", callsign, BROADCAST, "the callsign packets go to with mode=ax25"),
    Option("beacon", duration, 0, "mode=ax25: send an identification beacon this often "
                                     "(0: never)"),
    Option("arp", arp.parse_networks, arp.AddressSet(None),
           "IPv4 addresses whose ARP requests we answer (ax25, ethernet): any, or a "
           "comma-separated list"),
    Option("mac", mac_address, None, "our MAC address with mode=ethernet (default: random, "
                                     "locally administered)"),
    Option("tncport", integer(0, kiss.MAX_PORT), 0, "the TNC's radio port (KISS port 0-15)"),
    Option("txdelay", duration, None, "TNC keying delay, sent as TXDELAY (10 ms steps)"),
    Option("persist", integer(0, 255), None, "TNC p-persistence (0-255), sent as P"),
    Option("slottime", duration, None, "TNC slot time, sent as SLOTTIME (10 ms steps)"),
    Option("txtail", duration, None, "TNC TX tail, sent as TXTAIL (10 ms steps)"),
    Option("fullduplex", boolean, None, "TNC full duplex on/off, sent as FULLDUPLEX"),
    Option("sethardware", tnc.hex_bytes, None, "TNC-specific SETHARDWARE bytes, in hex"),
    Option("init", tnc.init_string, None,
           "text sent before KISS mode on every (re)connect (\\r, \\n, \\xHH escapes), "
           "e.g. KISS ON\\r"),
    Option("initwait", duration, 0.5, "pause after the init string"),
    Option("exit", boolean, False, "leave KISS mode (send FEND 0xFF FEND) on close"),
    Option("mtu", integer(68, 65535), DEFAULT_MTU, "largest packet carried"),
)


class KissLinkBase(ReportsLoss, Link):
    """KISS data frames over a byte stream that reconnects; subclasses open the stream."""

    drop_reasons: ClassVar[Mapping[str, str]] = {**kiss.REASONS, **REASONS}

    wait_for_peer: ClassVar[bool] = False  # a first open that fails: retry, not an error
    lost_drop: ClassVar[str] = drops.UNPLUGGED  # what a send is counted as while it is away

    def __init__(self, target: str, options: Mapping[str, Any]) -> None:
        super().__init__(target, options)
        config = self.config
        self.tnc_port: int = config["tncport"]
        self.payload = self._payload_mode(config)
        self._max_data: int = config["mtu"] + MAX_OVERHEAD
        self._decoder = self._new_decoder()
        self._beacon_every: float = config["beacon"]
        self._beacon_at = 0.0
        waits = self.wait_for_peer or bool(config.get("wait"))
        self._stream = ReconnectingStream(self.name, self.describe_target(), self._connect,
                                          self._on_open, wait_for_peer=waits,
                                          write_timeout=self.write_timeout(),
                                          lost_drop=self.lost_drop)

    def _payload_mode(self, config: Mapping[str, Any]) -> PayloadMode:
        mode = config["mode"]
        if mode != "ax25" and (config["call"] or config["beacon"]):
            raise ConfigError(f"link {self.scheme}: call= and beacon= need mode=ax25")
        if mode == "ax25":
            if config["call"] is None:
                raise ConfigError(f"link {self.scheme}: mode=ax25 needs our callsign, "
                                  "e.g. call=N0CALL-1")
            return Ax25Mode(config["call"], config["peer"], config["arp"])
        if mode == "ethernet":
            mac = config["mac"] or bytes([os.urandom(1)[0] & 0xFC | 0x02]) + os.urandom(5)
            return EthernetMode(mac, config["arp"])
        return TunHeaderMode() if mode == "tun" else RawMode()

    def _new_decoder(self) -> kiss.KissDecoder:
        return kiss.KissDecoder(self._max_data, self.tnc_port, errors=self.counters.drops)

    @property
    def mtu(self) -> int | None:
        value: int = self.config["mtu"]
        return value

    def describe_target(self) -> str:
        return self.target

    def write_timeout(self) -> float:
        return CONNECT_TIMEOUT

    @abstractmethod
    def _connect(self) -> StreamHandle:
        """Open the stream to the TNC (raise on failure)."""

    def _on_open(self, write: Callable[[bytes], None]) -> None:
        """A fresh stream: start decoding afresh and tell the TNC its set-up again."""
        self._decoder = self._new_decoder()
        if self.config["init"] is not None:
            write(self.config["init"])
            time.sleep(self.config["initwait"])
        parameters = tnc.parameter_frames(self.config, self.tnc_port)
        if parameters:
            write(parameters)

    def open(self) -> None:
        self._stream.open()
        self._beacon_at = time.monotonic()  # identify as soon as we are on the air

    def _send_frame(self, payload: bytes) -> str | None:
        return self._stream.write(kiss.encode_data(payload, self.tnc_port))

    def send(self, packet: bytes) -> None:
        if len(packet) > self.config["mtu"]:
            self.counters.drop(drops.MTU)
            return
        reason = self._send_frame(self.payload.wrap(packet))
        if reason is not None:
            self.counters.drop(reason)
            return
        self.counters.sent(len(packet))

    def _beacon_due(self, timeout: float) -> float:
        """Send the identification beacon when due; return how long receive may wait."""
        if not self._beacon_every or not isinstance(self.payload, Ax25Mode):
            return timeout
        now = time.monotonic()
        if now >= self._beacon_at and self._stream.connected:
            self._send_frame(self.payload.beacon())
            self._beacon_at = now + self._beacon_every
        return max(0.0, min(timeout, self._beacon_at - now))

    def receive(self, timeout: float) -> list[bytes]:
        data = self._stream.read(self._beacon_due(timeout))
        packets = []
        for payload in self.report_loss(self._decoder.feed(data)) if data else ():
            received = self.payload.unwrap(payload)
            if received.reply is not None:
                self.counters.drop(ARP_ANSWERED)
                self._send_frame(received.reply)
            elif received.drop is not None:
                self.counters.drop(received.drop)
            elif received.packet is not None:
                self.counters.received(len(received.packet))
                packets.append(received.packet)
        return packets

    def close(self) -> None:
        if self.config["exit"] and self._stream.connected:
            self._stream.write(kiss.EXIT_KISS)
        self._stream.close()


class KissLink(KissLinkBase):
    """KISS over a serial port: a hardware TNC, a LoRa KISS modem, a pty."""

    scheme = "kiss"
    summary = "packets in KISS frames to a TNC or radio modem on a serial port (raw IP or AX.25)"
    target_help = "DEVICE (e.g. /dev/ttyUSB0)"
    options = (*SERIAL_OPTIONS, *KISS_OPTIONS,
               Option("wait", boolean, False,
                      "when the device is absent (or cannot be opened) at start, start anyway "
                      "and open it when it appears, as after an unplug (otherwise: an error)"))

    def __init__(self, target: str, options: Mapping[str, Any]) -> None:
        if not target:
            raise ConfigError("link kiss: needs a device, e.g. kiss:/dev/ttyUSB0?baud=9600")
        super().__init__(target, options)

    def write_timeout(self) -> float:
        baud: int = self.config["baud"]
        line_time = (PORT_BUFFER + 2 * self._max_data + 4) * 10 / baud
        return max(1.0, 2 * line_time)

    def _connect(self) -> StreamHandle:
        port = open_serial(self.target, self.config)
        port.reset_input_buffer()  # stale input from before the open is no frame of ours
        handle: StreamHandle = port
        return handle

    @classmethod
    @contextlib.contextmanager
    def lab_pair(cls, url: LinkUrl, sides: LabSides) -> Iterator[tuple[LinkUrl, LinkUrl]]:
        """Join the lab hosts with a pty pair paced at the URL's baud (both see /dev/pts)."""
        with serial_cable_pair(url, sides, url_baud(url)) as pair:
            yield pair

    @classmethod
    def lab_configured(cls, url: LinkUrl) -> tuple[LabDirection, LabDirection] | None:
        """The lab cable's rate, both ways: 8 of every 10 line bits (8N1) carry bytes; each
        frame adds FEND, the command byte, FEND and its mode's header; escapes not counted."""
        mode = url.options.get("mode", "raw")
        header = {"ax25": 16, "tun": 4, "ethernet": 14}.get(mode, 0)
        direction = LabDirection(rate=url_baud(url) * 8 / SERIAL_BITS_PER_BYTE, overhead=3 + header)
        return direction, direction


class KissTcpLink(KissLinkBase):
    """KISS over TCP to a soft TNC (Direwolf's KISS port, a network TNC); reconnects forever."""

    scheme = "kiss+tcp"
    summary = "packets in KISS frames to a soft TNC over TCP (Direwolf); reconnects with backoff"
    target_help = "HOST:PORT of the TNC's KISS TCP port (Direwolf: 8001)"
    options = KISS_OPTIONS
    wait_for_peer = True
    lost_drop = drops.NOT_CONNECTED

    def __init__(self, target: str, options: Mapping[str, Any]) -> None:
        try:
            self.address = host_port(target)
        except ValueError as exc:
            raise ConfigError(f"link kiss+tcp: bad target {target!r}: {exc}") from None
        super().__init__(target, options)

    def _connect(self) -> StreamHandle:
        sock = socket.create_connection(self.address, timeout=CONNECT_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        return sock
