"""ARP (RFC 826) requests and replies without I/O, for AX.25 and Ethernet hardware addresses.

The `kiss:` link answers a peer's ARP requests for the tunnel's addresses itself: Linux's
AX.25 stack (kissattach) asks with PID 0xCD UI frames, tncattach's Ethernet mode with Ethernet
ARP. Hardware address sizes: AX.25 7 bytes (hardware type 3), Ethernet 6 (hardware type 1).
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable
from dataclasses import dataclass

HARDWARE_ETHERNET = 1
HARDWARE_AX25 = 3
PROTOCOL_IPV4 = 0x0800
PROTOCOL_AX25_IP = 0x00CC  # what Linux puts in an AX.25 ARP's protocol field
REQUEST = 1
REPLY = 2
_HEADER = struct.Struct("!HHBBH")


@dataclass(frozen=True)
class ArpRequest:
    """Who asks (hardware and IPv4 address) for which IPv4 address, and in which format."""

    hardware_type: int
    protocol_type: int
    sender_hardware: bytes
    sender_ip: bytes
    target_ip: bytes

    def reply(self, our_hardware: bytes) -> bytes:
        """The reply saying `target_ip` is at `our_hardware`, to the asker."""
        return b"".join((_HEADER.pack(self.hardware_type, self.protocol_type,
                                      len(our_hardware), 4, REPLY),
                         our_hardware, self.target_ip, self.sender_hardware, self.sender_ip))


def parse_request(packet: bytes, hardware_type: int, hardware_size: int) -> ArpRequest | None:
    """The IPv4 ARP request in `packet` for this kind of hardware, or None (a reply, or
    something else)."""
    if len(packet) < _HEADER.size + 2 * (hardware_size + 4):
        return None
    hardware, protocol, hlen, plen, operation = _HEADER.unpack_from(packet)
    if (hardware != hardware_type or protocol not in (PROTOCOL_IPV4, PROTOCOL_AX25_IP)
            or hlen != hardware_size or plen != 4 or operation != REQUEST):
        return None
    offset = _HEADER.size
    sender_hardware = packet[offset:offset + hlen]
    sender_ip = packet[offset + hlen:offset + hlen + 4]
    target_ip = packet[offset + 2 * hlen + 4:offset + 2 * hlen + 8]
    return ArpRequest(hardware, protocol, sender_hardware, sender_ip, target_ip)


def request(hardware_type: int, protocol_type: int, sender_hardware: bytes, sender_ip: str,
            target_ip: str) -> bytes:
    """An ARP request (what a peer sends; tests build one with it)."""
    return b"".join((_HEADER.pack(hardware_type, protocol_type, len(sender_hardware), 4,
                                  REQUEST),
                     sender_hardware, ipaddress.IPv4Address(sender_ip).packed,
                     bytes(len(sender_hardware)), ipaddress.IPv4Address(target_ip).packed))


class AddressSet:
    """The IPv4 addresses the link answers ARP for: listed networks, or (None) any address
    but the asker's own, which suits a point-to-point radio link."""

    def __init__(self, networks: Iterable[ipaddress.IPv4Network] | None) -> None:
        self.networks = None if networks is None else tuple(networks)

    def __str__(self) -> str:
        return "any" if self.networks is None else ",".join(map(str, self.networks))

    def answers(self, request: ArpRequest) -> bool:
        if request.target_ip == request.sender_ip:  # gratuitous ARP: an announcement
            return False
        if self.networks is None:
            return True
        target = ipaddress.IPv4Address(request.target_ip)
        return any(target in network for network in self.networks)


def parse_networks(text: str) -> AddressSet:
    """Option parser: `any`, or IPv4 addresses/networks separated by commas."""
    if text == "any":
        return AddressSet(None)
    try:
        return AddressSet(ipaddress.IPv4Network(part, strict=False)
                          for part in text.split(","))
    except ValueError:
        raise ValueError("expected 'any' or IPv4 addresses/networks separated by commas") \
            from None
