"""What a KISS data frame carries, without I/O: four payload modes, chosen with `?mode=`.

- `raw`: the IP packet alone (the default, the smallest).
- `ax25`: the packet in an AX.25 UI frame (PID 0xCC) from our callsign to the peer's, as
  Linux's AX.25 stack (kissattach) sends and expects; AX.25 ARP requests (PID 0xCD) for our
  addresses are answered.
- `tun`: tncattach's default (point-to-point, TUN) mode: the 4-byte TUN packet information
  header (flags, EtherType) before the packet.
- `ethernet`: tncattach's `--ethernet` (TAP) mode: an Ethernet header before the packet; Ethernet
  ARP requests for our addresses are answered (probes not), our addresses announced, and the
  peer's MAC address learned from what it sends and asked for again when it falls silent.

`unwrap()` of a frame gives a `Received`: a packet for the tunnel, a reply frame to send back
(ARP), or the reason it was dropped (the modes' own reasons are below, described in `REASONS`).

`ax25` and `ethernet` are addressed (`AddressedMode`): given a multipoint tunnel's stations
(callsigns, MAC addresses) they wrap a packet for one station or for all (the AX.25 or Ethernet
broadcast address), tell each packet's sender, and drop frames from any other station
(`unknown_station`): docs/kiss.md, "Many stations".
"""

from __future__ import annotations

import hashlib
import ipaddress
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from linkbridge.plugin import drops
from linkbridge_kiss import arp
from linkbridge_kiss.ax25 import (
    BROADCAST,
    HEADER_SIZE,
    ID,
    MAX_HEADER_SIZE,
    PID_ARP,
    PID_IP,
    PID_NO_LAYER3,
    Callsign,
    UiFrame,
    parse_ui,
    ui_frame,
)

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_ARP = 0x0806
ETHERNET_HEADER = 14
BROADCAST_MAC = b"\xff" * 6
TUN_HEADER = 4

# The payload modes' drop reasons (the kiss: links declare them)
AX25_MALFORMED = "ax25_malformed"
AX25_NOT_UI = "ax25_not_ui"
AX25_NOT_FOR_US = "ax25_not_for_us"
AX25_OTHER_PID = "ax25_other_pid"
ARP_ANSWERED = "arp_answered"
ARP_IGNORED = "arp_ignored"
ETHERNET_OTHER = "ethernet_other"
UNKNOWN_STATION = "unknown_station"
REASONS = {
    AX25_MALFORMED: "an AX.25 frame too short or with an address field without its end",
    AX25_NOT_UI: "a connected-mode or other non-UI AX.25 frame",
    AX25_NOT_FOR_US: "an AX.25 UI frame to another station",
    AX25_OTHER_PID: "an AX.25 UI frame of another protocol (beacons, APRS text)",
    ARP_ANSWERED: "an ARP request consumed by the link (answered, not delivered)",
    ARP_IGNORED: "other ARP: a probe, an announcement, a reply, a request for another address",
    ETHERNET_OTHER: "an Ethernet frame of another type or to another station",
    UNKNOWN_STATION: "a frame from a callsign or MAC address that is no peer's endpoint= "
                     "(multipoint)",
}
_TEXT = bytes(range(0x20, 0x7F)) + b"\t\r\n"  # a bare text frame: tncattach's --id


@dataclass(frozen=True)
class Received:
    """What one frame from the radio amounts to: at most one of the three is set; `sender` is
    the station a packet came from (as set_stations() was given it) in an addressed mode with
    stations."""

    packet: bytes | None = None
    reply: bytes | None = None
    drop: str | None = None
    sender: str = ""


MALFORMED = Received(drop=drops.MALFORMED_FRAME)


def ethertype(packet: bytes) -> int:
    """The EtherType of an IP packet, from its version nibble."""
    return ETHERTYPE_IPV6 if packet[:1] and packet[0] >> 4 == 6 else ETHERTYPE_IPV4


class PayloadMode(Protocol):
    """Puts a packet into a KISS data frame's payload and takes it out again."""

    overhead: int  # the most bytes `wrap()` adds to a packet
    received_overhead: int  # the most bytes a received frame may carry besides its packet

    def wrap(self, packet: bytes) -> bytes: ...

    def unwrap(self, frame: bytes) -> Received: ...


class AddressedMode(PayloadMode, Protocol):
    """A payload mode with station addresses, for a multipoint tunnel's peers."""

    def set_stations(self, stations: Sequence[str]) -> None:
        """The peers' stations in the mode's notation; ValueError naming one it cannot read."""
        ...

    def wrap_to(self, station: str, packet: bytes) -> bytes: ...

    def wrap_all(self, packet: bytes) -> bytes: ...


Address = TypeVar("Address")


class Stations(Generic[Address]):
    """A multipoint tunnel's stations, each by its address (a callsign, a MAC address) and as
    the peer table names it; `parse` reads one (ValueError with the reason). Empty until
    `set()`: then the mode accepts any sender (one peer, as with --remote)."""

    def __init__(self, parse: Callable[[str], Address]) -> None:
        self.parse = parse
        self.named: dict[Address, str] = {}
        self.addresses: dict[str, Address] = {}

    def set(self, stations: Sequence[str]) -> None:
        """Serve `stations` from now on, in place of any given before (a reload gives the
        whole new list); ValueError, nothing changed, for one unreadable or two alike."""
        named: dict[Address, str] = {}
        addresses: dict[str, Address] = {}
        for station in stations:
            try:
                address = self.parse(station)
            except ValueError as exc:
                raise ValueError(f"endpoint {station!r}: {exc}") from None
            if address in named:
                raise ValueError(f"endpoints {named[address]!r} and {station!r} are the "
                                 "same station")
            named[address], addresses[station] = station, address
        self.named, self.addresses = named, addresses

    def sender(self, address: Address) -> str | None:
        """The station `address` is, "" when no stations are set, None when it is none."""
        return self.named.get(address) if self.named else ""


class RawMode:
    """The packet is the payload."""

    overhead = received_overhead = 0

    def wrap(self, packet: bytes) -> bytes:
        return packet

    def unwrap(self, frame: bytes) -> Received:
        return Received(packet=frame)


class TunHeaderMode:
    """tncattach's TUN mode: flags (0) and the EtherType before the packet."""

    overhead = received_overhead = TUN_HEADER

    def wrap(self, packet: bytes) -> bytes:
        return struct.pack("!HH", 0, ethertype(packet)) + packet

    def unwrap(self, frame: bytes) -> Received:
        """The packet after the header; a frame whose header names no IP packet (too short,
        another protocol, tncattach's --id text) is malformed."""
        packet = frame[TUN_HEADER:]
        if not packet or int.from_bytes(frame[2:4], "big") != ethertype(packet) \
                or packet[0] >> 4 not in (4, 6):
            return MALFORMED
        return Received(packet=packet)


def derived_mac(*names: str) -> bytes:
    """A MAC address that stays the same for the same names (the tunnel's device and
    addresses): locally administered, unicast."""
    digest = hashlib.sha256("\0".join(names).encode()).digest()
    return bytes([digest[0] & 0xFC | 0x02]) + digest[1:6]


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


def ipv4_addresses(interfaces: Iterable[str]) -> tuple[bytes, ...]:
    """The IPv4 addresses among `interfaces` (ADDRESS[/PREFIX] texts), packed."""
    addresses = (ipaddress.ip_interface(text).ip for text in interfaces)
    return tuple(address.packed for address in addresses if address.version == 4)


class EthernetMode:
    """tncattach's TAP mode: Ethernet frames between our `mac` and the peer's, as a host on an
    Ethernet would send them. ARP requests for our addresses are answered with `mac` (probes
    and announcements are not); `announcements()` are gratuitous ARPs for `addresses`. The
    peer's MAC is learned from the IP it sends us and from its ARP; when it has been silent
    for `rearp` seconds while we send (it may have restarted with another MAC), `recheck()`
    asks for it again, at most once per `rearp` (0: never). `clock()` gives the time.
    With stations (AddressedMode: MAC addresses) frames go to a peer's MAC or to the broadcast
    address, and only our addresses' ARP requests from a station are answered."""

    overhead = received_overhead = ETHERNET_HEADER

    def __init__(self, mac: bytes, answers: arp.AddressSet,
                 clock: Callable[[], float] = time.monotonic, rearp: float = 0.0) -> None:
        self.mac = mac
        self.answers = answers
        self.clock = clock
        self.rearp = rearp
        self.addresses: tuple[bytes, ...] = ()  # our IPv4 addresses, packed
        self.peer_mac = BROADCAST_MAC  # until a frame from the peer says otherwise
        self.peer_ip: bytes | None = None
        self.stations = Stations(mac_address)
        self._heard = self._asked = clock()

    def set_stations(self, stations: Sequence[str]) -> None:
        self.stations.set(stations)

    def wrap_to(self, station: str, packet: bytes) -> bytes:
        return self._header(self.stations.addresses[station], ethertype(packet)) + packet

    def wrap_all(self, packet: bytes) -> bytes:
        return self._header(BROADCAST_MAC, ethertype(packet)) + packet

    def _header(self, destination: bytes, kind: int) -> bytes:
        return destination + self.mac + kind.to_bytes(2, "big")

    def wrap(self, packet: bytes) -> bytes:
        return self._header(self.peer_mac, ethertype(packet)) + packet

    def _arp(self, operation: int, target_hardware: bytes, sender_ip: bytes,
             target_ip: bytes) -> bytes:
        return self._header(BROADCAST_MAC, ETHERTYPE_ARP) + arp.encode(
            arp.HARDWARE_ETHERNET, arp.PROTOCOL_IPV4, operation, self.mac, sender_ip,
            target_hardware, target_ip)

    def announcements(self) -> list[bytes]:
        """Gratuitous ARPs for our addresses (at open): a peer that knew us under another
        MAC address updates its cache."""
        return [self._arp(arp.REQUEST, bytes(6), address, address)
                for address in self.addresses]

    def recheck(self, packet: bytes) -> bytes | None:
        """An ARP request for the peer to send before `packet` when the peer has been silent
        for `rearp` seconds, else None."""
        now = self.clock()
        if not self.rearp or self.peer_mac == BROADCAST_MAC \
                or now - max(self._heard, self._asked) < self.rearp:
            return None
        target = self.peer_ip or (packet[16:20] if ethertype(packet) == ETHERTYPE_IPV4 else b"")
        if len(target) != 4:
            return None
        self._asked = now
        own = self.addresses[0] if self.addresses else arp.UNSPECIFIED
        return self._arp(arp.REQUEST, bytes(6), own, target)

    def unwrap(self, frame: bytes) -> Received:
        if len(frame) <= ETHERNET_HEADER:
            return MALFORMED
        destination, source = frame[:6], frame[6:12]
        kind = int.from_bytes(frame[12:14], "big")
        if kind not in (ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_ARP):
            return MALFORMED if not frame.translate(None, _TEXT) else Received(
                drop=ETHERNET_OTHER)
        if destination != self.mac and not destination[0] & 1:  # not ours, nor group-addressed
            return Received(drop=ETHERNET_OTHER)
        sender = self.stations.sender(source)
        if sender is None:
            return Received(drop=UNKNOWN_STATION)
        if source == self.peer_mac:
            self._heard = self.clock()
        body = frame[ETHERNET_HEADER:]
        if kind != ETHERTYPE_ARP:
            self._learn(source, self.peer_ip)
            return Received(packet=body, sender=sender)
        message = arp.parse(body, arp.HARDWARE_ETHERNET, 6)
        if message is None:
            return Received(drop=ARP_IGNORED)
        if self.answers.answers(message, self.addresses if self.stations.named else None):
            self._learn(source, message.sender_ip)
            return Received(reply=self._header(source, ETHERTYPE_ARP) + message.reply(self.mac))
        if message.operation == arp.REPLY or (message.announcement
                                              and message.sender_ip == self.peer_ip):
            self._learn(message.sender_hardware, message.sender_ip)
        return Received(drop=ARP_IGNORED)

    def _learn(self, mac: bytes, ip: bytes | None) -> None:
        """The peer is at `mac` (and IPv4 address `ip`), as of now."""
        self.peer_mac, self.peer_ip, self._heard = mac, ip, self.clock()


def callsign(text: str) -> Callsign:
    """Option parser: a callsign with an optional SSID."""
    return Callsign.parse(text)


class Ax25Mode:
    """IP in AX.25 UI frames between two callsigns; AX.25 ARP for our addresses answered.
    With stations (AddressedMode: callsigns) frames go to a peer's callsign or to QST, frames
    from other callsigns are dropped, and only our own addresses' ARP requests are answered
    (`addresses`, the tunnel's), each to the asking peer."""

    overhead = HEADER_SIZE
    received_overhead = MAX_HEADER_SIZE  # up to eight digipeaters

    def __init__(self, call: Callsign, peer: Callsign, answers: arp.AddressSet) -> None:
        self.call, self.peer, self.answers = call, peer, answers
        self.addresses: tuple[bytes, ...] = ()  # our IPv4 addresses, packed
        self.stations = Stations(callsign)
        self._hardware = call.encode()

    def set_stations(self, stations: Sequence[str]) -> None:
        before = self.stations.named, self.stations.addresses
        self.stations.set(stations)
        if self.call in self.stations.named:
            ours = self.stations.named[self.call]
            self.stations.named, self.stations.addresses = before  # nothing changed
            raise ValueError(f"endpoint {ours!r} is our own callsign (call={self.call})")

    def wrap(self, packet: bytes) -> bytes:
        return ui_frame(self.peer, self.call, PID_IP, packet)

    def wrap_to(self, station: str, packet: bytes) -> bytes:
        return ui_frame(self.stations.addresses[station], self.call, PID_IP, packet)

    def wrap_all(self, packet: bytes) -> bytes:
        return ui_frame(BROADCAST, self.call, PID_IP, packet)

    def beacon(self) -> bytes:
        """The identification beacon: our callsign as text, to ID."""
        return ui_frame(ID, self.call, PID_NO_LAYER3, str(self.call).encode())

    def unwrap(self, frame: bytes) -> Received:
        parsed = parse_ui(frame)
        if parsed == "malformed":
            return Received(drop=AX25_MALFORMED)
        if not isinstance(parsed, UiFrame):
            return Received(drop=AX25_NOT_UI)
        if parsed.pid not in (PID_IP, PID_ARP):  # beacons (to ID), APRS, text, whoever to
            return Received(drop=AX25_OTHER_PID)
        if parsed.destination not in (self.call, BROADCAST) or parsed.pending_digipeaters:
            return Received(drop=AX25_NOT_FOR_US)
        sender = self.stations.sender(parsed.source)
        if sender is None:
            return Received(drop=UNKNOWN_STATION)
        if parsed.pid == PID_IP:
            return Received(packet=parsed.info, sender=sender)
        request = arp.parse(parsed.info, arp.HARDWARE_AX25, len(self._hardware))
        shared = self.addresses if self.stations.named else None
        if request is None or not self.answers.answers(request, shared):
            return Received(drop=ARP_IGNORED)
        return Received(reply=ui_frame(parsed.source, self.call, PID_ARP,
                                       request.reply(self._hardware)))
