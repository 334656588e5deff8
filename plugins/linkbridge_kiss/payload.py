"""What a KISS data frame carries, without I/O: four payload modes, chosen with `?mode=`.

- `raw`: the IP packet alone (the default, the smallest).
- `ax25`: the packet in an AX.25 UI frame (PID 0xCC) from our callsign to the peer's, as
  Linux's AX.25 stack (kissattach) sends and expects; AX.25 ARP requests (PID 0xCD) for our
  addresses are answered.
- `tun`: tncattach's default (point-to-point, TUN) mode: the 4-byte TUN packet information
  header (flags, EtherType) before the packet.
- `ethernet`: tncattach's `--ethernet` (TAP) mode: an Ethernet header before the packet; Ethernet
  ARP requests for our addresses are answered and the peer's MAC address is learned.

`unwrap()` of a frame gives a `Received`: a packet for the tunnel, a reply frame to send back
(ARP), or the reason it was dropped (the modes' own reasons are below, described in `REASONS`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Protocol

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
REASONS = {
    AX25_MALFORMED: "an AX.25 frame too short or with an address field without its end",
    AX25_NOT_UI: "a connected-mode or other non-UI AX.25 frame",
    AX25_NOT_FOR_US: "an AX.25 UI frame to another station",
    AX25_OTHER_PID: "an AX.25 UI frame of another protocol (beacons, APRS text)",
    ARP_ANSWERED: "an ARP request consumed by the link (answered, not delivered)",
    ARP_IGNORED: "an ARP packet not for the link's addresses, or a reply",
    ETHERNET_OTHER: "an Ethernet frame of another type or to another station",
}


@dataclass(frozen=True)
class Received:
    """What one frame from the radio amounts to: at most one of the three is set."""

    packet: bytes | None = None
    reply: bytes | None = None
    drop: str | None = None


def ethertype(packet: bytes) -> int:
    """The EtherType of an IP packet, from its version nibble."""
    return ETHERTYPE_IPV6 if packet[:1] and packet[0] >> 4 == 6 else ETHERTYPE_IPV4


class PayloadMode(Protocol):
    """Puts a packet into a KISS data frame's payload and takes it out again."""

    overhead: int  # the most bytes `wrap()` adds to a packet

    def wrap(self, packet: bytes) -> bytes: ...

    def unwrap(self, frame: bytes) -> Received: ...


class RawMode:
    """The packet is the payload."""

    overhead = 0

    def wrap(self, packet: bytes) -> bytes:
        return packet

    def unwrap(self, frame: bytes) -> Received:
        return Received(packet=frame)


class TunHeaderMode:
    """tncattach's TUN mode: flags (0) and the EtherType before the packet."""

    overhead = TUN_HEADER

    def wrap(self, packet: bytes) -> bytes:
        return struct.pack("!HH", 0, ethertype(packet)) + packet

    def unwrap(self, frame: bytes) -> Received:
        if len(frame) <= TUN_HEADER:
            return Received(drop=drops.MALFORMED_FRAME)
        return Received(packet=frame[TUN_HEADER:])


class EthernetMode:
    """tncattach's TAP mode: Ethernet frames; ARP for our addresses answered with `mac`."""

    overhead = ETHERNET_HEADER

    def __init__(self, mac: bytes, answers: arp.AddressSet) -> None:
        self.mac = mac
        self.answers = answers
        self.peer_mac = BROADCAST_MAC  # until a frame from the peer says otherwise

    def _header(self, destination: bytes, kind: int) -> bytes:
        return destination + self.mac + kind.to_bytes(2, "big")

    def wrap(self, packet: bytes) -> bytes:
        return self._header(self.peer_mac, ethertype(packet)) + packet

    def unwrap(self, frame: bytes) -> Received:
        if len(frame) <= ETHERNET_HEADER:
            return Received(drop=drops.MALFORMED_FRAME)
        destination, source = frame[:6], frame[6:12]
        kind = int.from_bytes(frame[12:14], "big")
        body = frame[ETHERNET_HEADER:]
        if destination != self.mac and not destination[0] & 1:  # not ours, nor group-addressed
            return Received(drop=ETHERNET_OTHER)
        if kind in (ETHERTYPE_IPV4, ETHERTYPE_IPV6):
            self.peer_mac = source
            return Received(packet=body)
        if kind == ETHERTYPE_ARP:
            request = arp.parse_request(body, arp.HARDWARE_ETHERNET, 6)
            if request is None or not self.answers.answers(request):
                return Received(drop=ARP_IGNORED)
            self.peer_mac = source
            return Received(reply=self._header(source, ETHERTYPE_ARP) + request.reply(self.mac))
        return Received(drop=ETHERNET_OTHER)


class Ax25Mode:
    """IP in AX.25 UI frames between two callsigns; AX.25 ARP for our addresses answered."""

    overhead = HEADER_SIZE

    def __init__(self, call: Callsign, peer: Callsign, answers: arp.AddressSet) -> None:
        self.call, self.peer, self.answers = call, peer, answers
        self._hardware = call.encode()

    def wrap(self, packet: bytes) -> bytes:
        return ui_frame(self.peer, self.call, PID_IP, packet)

    def beacon(self) -> bytes:
        """The identification beacon: our callsign as text, to ID."""
        return ui_frame(ID, self.call, PID_NO_LAYER3, str(self.call).encode())

    def unwrap(self, frame: bytes) -> Received:
        parsed = parse_ui(frame)
        if parsed == "malformed":
            return Received(drop=AX25_MALFORMED)
        if not isinstance(parsed, UiFrame):
            return Received(drop=AX25_NOT_UI)
        if parsed.destination not in (self.call, BROADCAST) or parsed.pending_digipeaters:
            return Received(drop=AX25_NOT_FOR_US)
        if parsed.pid == PID_IP:
            return Received(packet=parsed.info)
        if parsed.pid == PID_ARP:
            request = arp.parse_request(parsed.info, arp.HARDWARE_AX25, len(self._hardware))
            if request is None or not self.answers.answers(request):
                return Received(drop=ARP_IGNORED)
            return Received(reply=ui_frame(parsed.source, self.call, PID_ARP,
                                           request.reply(self._hardware)))
        return Received(drop=AX25_OTHER_PID)


MAX_OVERHEAD = MAX_HEADER_SIZE  # the most any mode's frames add (AX.25 with 8 digipeaters)
