"""The `kiss:` (serial TNC) and `kiss+tcp:` (soft TNC over TCP) links: thin glue around the KISS
codec (linkbridge.plugin.kiss), the payload modes (payload.py) and StreamLink, which opens,
paces writes and reconnects with backoff (running on_open(), the TNC's set-up, each time).
With `mode=ax25` or `mode=ethernet` a link is a `KissStations`, an AddressedLink whose
stations are callsigns or MAC addresses (a multipoint tunnel's peers, docs/kiss.md).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
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
from linkbridge.plugin.lab import (
    SERIAL_BITS_PER_BYTE,
    LabDirection,
    LabStation,
    LabStationHosts,
)
from linkbridge.plugin.serial import SERIAL_OPTIONS, SerialLine, line_write_timeout, url_baud
from linkbridge_kiss import arp, hublab, tnc
from linkbridge_kiss.ax25 import BROADCAST
from linkbridge_kiss.payload import (
    ARP_ANSWERED,
    REASONS,
    AddressedMode,
    Ax25Mode,
    EthernetMode,
    PayloadMode,
    RawMode,
    Received,
    TunHeaderMode,
    callsign,
    derived_mac,
    ipv4_addresses,
    mac_address,
)

log = logging.getLogger("linkbridge.kiss")

DEFAULT_MTU = 256  # AX.25's usual packet length; what most TNCs and LoRa modems take
CONNECT_TIMEOUT = 2.0
MODES = ("raw", "ax25", "tun", "ethernet")
ADDRESSED_MODES = ("ax25", "ethernet")  # the modes with station addresses (KissStations)
FOREIGN_PEERS = {  # the modes whose peer need not be linkbridge (Link.foreign_peer)
    "ax25": "an AX.25 station such as kissattach (mode=ax25)",
    "tun": "tncattach (mode=tun)",
    "ethernet": "tncattach --ethernet (mode=ethernet)",
}


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

    def __new__(cls, target: str, options: Mapping[str, Any]) -> KissLinkBase:
        """In an addressed mode (ax25, ethernet) the link is a KissStations."""
        addressed = STATION_CLASSES.get(cls)
        if addressed is not None and options.get("mode") in ADDRESSED_MODES:
            return super().__new__(addressed)
        return super().__new__(cls)

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
        gives one), so that a restart keeps it; the IPv4 addresses are announced at open (and
        with many stations, in ax25 mode too, the only ones whose ARP is answered)."""
        if isinstance(self.payload, EthernetMode) and self.config["mac"] is None:
            self.payload.mac = derived_mac(tunnel.device, *tunnel.addresses)
        if isinstance(self.payload, EthernetMode | Ax25Mode):
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
        return self.unwrapped(self.payload.unwrap(frame))

    def unwrapped(self, received: Received) -> bytes | None:
        """The packet a KISS frame's payload carries; an ARP request is answered (and counted
        as `arp_answered`), anything else that is not one of our packets is a counted drop,
        a packet over the MTU too (`kiss_oversize`)."""
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


class KissStations(KissLinkBase):
    """A kiss: link in an addressed mode (ax25, ethernet): an AddressedLink whose stations are
    callsigns or MAC addresses. send() keeps going to `peer=` (one peer, --remote); a
    multipoint tunnel sends to one station or to all (the broadcast address) and learns each
    packet's sender from its source address."""

    payload: AddressedMode
    _senders: list[str] | None = None  # receive_from(): the sender of each packet unwrapped

    def set_stations(self, stations: Sequence[str]) -> None:
        """The peers' stations: callsigns (mode=ax25) or MAC addresses (mode=ethernet)."""
        if isinstance(self.payload, Ax25Mode) and self.config["peer"] != BROADCAST:
            raise ConfigError(f"link {self.name}: peer= names the one peer of --remote; with "
                              "--peer give each peer's callsign as its endpoint=")
        try:
            self.payload.set_stations(stations)
        except ValueError as exc:
            raise ConfigError(f"link {self.name}: {exc}") from None

    def send_to(self, station: str, frame: bytes) -> None:
        self.send_with(frame, lambda packet: kiss.encode_data(
            self.payload.wrap_to(station, packet), self.tnc_port))

    def send_all(self, frame: bytes) -> None:
        self.send_with(frame, lambda packet: kiss.encode_data(
            self.payload.wrap_all(packet), self.tnc_port))

    def receive_from(self, timeout: float) -> list[tuple[str, bytes]]:
        """The packets received, each with the station it came from (frames from others
        are counted as unknown_station)."""
        senders: list[str] = []
        self._senders = senders
        try:
            packets = self.receive(timeout)
        finally:
            self._senders = None
        return list(zip(senders, packets, strict=True))

    def unwrap(self, frame: bytes) -> bytes | None:
        received = self.payload.unwrap(frame)
        packet = self.unwrapped(received)
        if packet is not None and self._senders is not None:
            self._senders.append(received.sender)
        return packet


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

    @classmethod
    @contextlib.contextmanager
    def lab_stations(cls, url: LinkUrl, hosts: LabStationHosts) -> Iterator[list[LabStation]]:
        """Stations on one KISS hub (a shared channel between their ptys, at the URL's
        baud), each with its callsign (mode=ax25: LBA, LBB...) or MAC address
        (mode=ethernet: 02:00:00:00:00:01...); everyone hears everyone."""
        if url.options.get("mode") not in ADDRESSED_MODES:
            raise ConfigError("lab --stations on kiss: needs station addresses: give "
                              "mode=ax25 or mode=ethernet (e.g. kiss:?mode=ax25&baud=9600)")
        if url.target or any(key in url.options for key in ("call", "peer", "mac")):
            raise ConfigError("the lab chooses the kiss: ptys, callsigns and MAC addresses "
                              "itself; give options only (e.g. kiss:?mode=ax25&baud=9600)")
        if hosts.topology is not None:
            raise ConfigError("kiss: stations all hear each other on the hub: --topology "
                              "needs the sim: radio medium (sim:?duplex=half&...)")
        ax25 = url.options["mode"] == "ax25"
        count = len(hosts.names)
        addresses = [f"LB{name}" if ax25 else f"02:00:00:00:00:{index + 1:02x}"
                     for index, name in enumerate(hosts.names)]
        with hublab.lab_hub(hublab.hub_directory(hosts.netns[0]), hosts.names,
                         url_baud(url)) as paths:
            yield [LabStation(LinkUrl("kiss", path, {**url.options,
                                                     ("call" if ax25 else "mac"): address}),
                              address, tuple(other for other in range(count) if other != index))
                   for index, (path, address) in enumerate(zip(paths, addresses, strict=True))]

    @classmethod
    def lab_station_rows(cls, url: LinkUrl,
                         hosts: LabStationHosts) -> list[tuple[str, str, str, str]]:
        """The hub's figures for each station: frames it put on the channel, frames of the
        others the hub gave it, and those its pty had no room for."""
        stats = hublab.hub_stats(hublab.hub_directory(hosts.netns[0]))
        return [(f"hub {name}", "KISS frames", f"{s['frames_in']} in ({s['bytes_in']} bytes), "
                 f"{s['frames_out']} out", f"{s['lost']} lost, {s['dropped']} dropped")
                for name, s in stats.items()]


class KissStationLink(KissStations, KissLink):
    """`kiss:DEVICE?mode=ax25|ethernet`: a serial TNC with station addresses."""


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


class KissTcpStationLink(KissStations, KissTcpLink):
    """`kiss+tcp:HOST:PORT?mode=ax25|ethernet`: a soft TNC with station addresses."""


STATION_CLASSES: dict[type[KissLinkBase], type[KissStations]] = {
    KissLink: KissStationLink, KissTcpLink: KissTcpStationLink}
