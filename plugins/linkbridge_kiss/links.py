"""The `kiss:` (serial TNC) and `kiss+tcp:` (soft TNC over TCP) links: thin glue around the KISS
codec (linkbridge.plugin.kiss), the payload modes (payload.py) and StreamLink, which opens,
paces writes and reconnects with backoff (running on_open(), the TNC's set-up, each time).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from linkbridge.plugin import (
    ConfigError,
    Framing,
    LinkUrl,
    Lost,
    Option,
    Stream,
    StreamLink,
    TunnelInfo,
    boolean,
    choice,
    duration,
    host_port,
    integer,
)
from linkbridge.plugin.codecs import kiss
from linkbridge.plugin.lab import SERIAL_BITS_PER_BYTE, LabDirection
from linkbridge.plugin.serial import SERIAL_OPTIONS, SerialLine, line_write_timeout, url_baud
from linkbridge_kiss import arp, tnc
from linkbridge_kiss.ax25 import BROADCAST, Callsign
from linkbridge_kiss.payload import (
    ARP_ANSWERED,
    REASONS,
    Ax25Mode,
    EthernetMode,
    PayloadMode,
    RawMode,
    TunHeaderMode,
    derived_mac,
    ipv4_addresses,
)

log = logging.getLogger("linkbridge.kiss")

DEFAULT_MTU = 256  # AX.25's usual packet length; what most TNCs and LoRa modems take
CONNECT_TIMEOUT = 2.0
MODES = ("raw", "ax25", "tun", "ethernet")
FOREIGN_PEERS = {  # the modes whose peer need not be linkbridge (Link.foreign_peer)
    "ax25": "an AX.25 station such as kissattach (mode=ax25)",
    "tun": "tncattach (mode=tun)",
    "ethernet": "tncattach --ethernet (mode=ethernet)",
}


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
    Option("mac", mac_address, None, "our MAC address with mode=ethernet (default: derived "
                                     "from the tunnel's name and addresses, locally "
                                     "administered)"),
    Option("rearp", duration, 1.0, "mode=ethernet: ask for the peer's MAC address again "
                                   "when it has been silent this long while we send (0: "
                                   "never)"),
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


class KissLinkBase(StreamLink):
    """KISS data frames over a byte stream that reconnects; subclasses are the opener."""

    drop_reasons: ClassVar[Mapping[str, str]] = {**kiss.REASONS, **REASONS}

    write_timeout = CONNECT_TIMEOUT

    def __init__(self, target: str, options: Mapping[str, Any]) -> None:
        super().__init__(target, options)
        config = self.config
        self.tnc_port: int = config["tncport"]
        self.payload = self._payload_mode(config)
        self._max_data: int = config["mtu"] + self.payload.received_overhead
        self._beacon_every: float = config["beacon"]
        self._beacon_at = 0.0
        self._mismatch_logged = False
        self.framing = Framing(
            self._encode,
            lambda _mtu, errors: kiss.KissDecoder(self._max_data, self.tnc_port, errors=errors),
            resyncs=True)

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
            return EthernetMode(config["mac"] or derived_mac(self.name), config["arp"],
                                self.clock, config["rearp"])
        return TunHeaderMode() if mode == "tun" else RawMode()

    @property
    def foreign_peer(self) -> str | None:
        return FOREIGN_PEERS.get(self.config["mode"])

    def attach_tunnel(self, tunnel: TunnelInfo) -> None:
        """mode=ethernet: our MAC address from the tunnel's name and addresses (unless `mac=`
        gives one), so that a restart keeps it; the IPv4 addresses are announced at open."""
        if isinstance(self.payload, EthernetMode):
            if self.config["mac"] is None:
                self.payload.mac = derived_mac(tunnel.device, *tunnel.addresses)
            self.payload.addresses = ipv4_addresses(tunnel.addresses)

    def _encode(self, packet: bytes) -> bytes:
        """The KISS frame of `packet`, after an ARP request when mode=ethernet asks again for
        a peer that fell silent."""
        frame = kiss.encode_data(self.payload.wrap(packet), self.tnc_port)
        if isinstance(self.payload, EthernetMode):
            question = self.payload.recheck(packet)
            if question is not None:
                return kiss.encode_data(question, self.tnc_port) + frame
        return frame

    def on_open(self) -> None:
        """A fresh stream: tell the TNC its set-up again."""
        if self.config["init"] is not None:
            self.write(self.config["init"])
            time.sleep(self.config["initwait"])
        parameters = tnc.parameter_frames(self.config, self.tnc_port)
        if parameters:
            self.write(parameters)
        if isinstance(self.payload, EthernetMode):  # a peer may know us under another MAC
            for announcement in self.payload.announcements():
                self._send_frame(announcement)

    def open(self) -> None:
        super().open()
        self._beacon_at = self.clock()  # identify as soon as we are on the air

    def _send_frame(self, payload: bytes) -> str | None:
        return self.write(kiss.encode_data(payload, self.tnc_port))

    def _beacon_due(self, timeout: float) -> float:
        """Send the identification beacon when due; return how long receive may wait."""
        if not self._beacon_every or not isinstance(self.payload, Ax25Mode):
            return timeout
        now = self.clock()
        if now >= self._beacon_at and self.connected:
            self._send_frame(self.payload.beacon())
            self._beacon_at = now + self._beacon_every
        return max(0.0, min(timeout, self._beacon_at - now))

    def receive(self, timeout: float) -> list[bytes]:
        return super().receive(self._beacon_due(timeout))

    def unwrap(self, frame: bytes) -> bytes | None:
        """The packet a KISS frame's payload carries; an ARP request is answered (and counted
        as `arp_answered`), anything else that is not one of our packets is a counted drop,
        a packet over the MTU too (`kiss_oversize`)."""
        received = self.payload.unwrap(frame)
        if received.reply is not None:
            self.counters.drop(ARP_ANSWERED)
            self._send_frame(received.reply)
        elif received.drop is not None:
            self.counters.drop(received.drop)
        packet = received.packet
        if packet is not None and len(packet) > self.config["mtu"]:  # AX.25 without digipeaters
            self.counters.drop(kiss.OVERSIZE)
            self._mtu_mismatch(f"a packet of {len(packet)} bytes")
            return None
        return packet

    def report_loss(self, decoded: Sequence[bytes | Lost]) -> list[bytes]:
        """The decoder's frames; a frame too long for the MTU is logged (once) as well."""
        for item in decoded:
            if type(item) is Lost and item.reason == kiss.OVERSIZE:
                self._mtu_mismatch(f"a frame of {item.size} bytes" if item.size
                                   else f"a frame of over {2 * self._max_data} bytes")
        return super().report_loss(decoded)

    def _mtu_mismatch(self, what: str) -> None:
        """Say once that the peer sends more than our MTU carries (counted kiss_oversize)."""
        if self._mismatch_logged:
            return
        self._mismatch_logged = True
        log.warning("%s: the peer sent %s, more than this link's MTU %d allows (mode=%s frames "
                    "of at most %d bytes): its MTU is larger, give both sides the same; such "
                    "frames are dropped (kiss_oversize)", self.name, what, self.config["mtu"],
                    self.config["mode"], self._max_data)

    def close(self) -> None:
        if self.config["exit"] and self.connected:
            self.write(kiss.EXIT_KISS)
        super().close()


class KissLink(SerialLine, KissLinkBase):
    """KISS over a serial port: a hardware TNC, a LoRa KISS modem, a pty."""

    scheme = "kiss"
    summary = "packets in KISS frames to a TNC or radio modem on a serial port (raw IP or AX.25)"
    target_help = "DEVICE (e.g. /dev/ttyUSB0)"
    options = (*SERIAL_OPTIONS, *KISS_OPTIONS)

    def __init__(self, target: str, options: Mapping[str, Any]) -> None:
        super().__init__(target, options)
        self.write_timeout = line_write_timeout(self.config["baud"], self._max_data)

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
    stream_kind = "TNC connection"

    def __init__(self, target: str, options: Mapping[str, Any]) -> None:
        try:
            self.address = host_port(target)
        except ValueError as exc:
            raise ConfigError(f"link kiss+tcp: bad target {target!r}: {exc}") from None
        super().__init__(target, options)

    def open_stream(self) -> Stream:
        sock = socket.create_connection(self.address, timeout=CONNECT_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return Stream(sock.detach())
