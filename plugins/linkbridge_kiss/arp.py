"""ARP (RFC 826) messages without I/O, for AX.25 and Ethernet hardware addresses.

The `kiss:` link answers a peer's ARP requests for the tunnel's addresses itself: Linux's
AX.25 stack (kissattach) asks with PID 0xCD UI frames, tncattach's Ethernet mode with Ethernet
ARP. Hardware address sizes: AX.25 7 bytes (hardware type 3), Ethernet 6 (hardware type 1).
Probes (RFC 5227: sender address 0.0.0.0, a host checking that its address is free) and
announcements (gratuitous ARP: sender and target address the same) are never answered.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

HARDWARE_ETHERNET = 1
HARDWARE_AX25 = 3
PROTOCOL_IPV4 = 0x0800
PROTOCOL_AX25_IP = 0x00CC  # what Linux puts in an AX.25 ARP's protocol field
REQUEST = 1
REPLY = 2
UNSPECIFIED = bytes(4)  # 0.0.0.0, the sender address of a probe
_HEADER = struct.Struct("!HHBBH")


@dataclass(frozen=True)
class ArpMessage:
    """An IPv4 ARP request or reply: who sends it (hardware and IPv4 address), about whom."""

    hardware_type: int
    protocol_type: int
    operation: int
    sender_hardware: bytes
    sender_ip: bytes
    target_ip: bytes

    @property
    def probe(self) -> bool:
        """A host checking that an address is free (RFC 5227): it claims no address yet."""
        return self.sender_ip == UNSPECIFIED

    @property
    def announcement(self) -> bool:
        """A gratuitous ARP: a host announcing its own address."""
        return self.sender_ip == self.target_ip

    def reply(self, our_hardware: bytes) -> bytes:
        """The reply saying `target_ip` is at `our_hardware`, to the asker."""
        return encode(self.hardware_type, self.protocol_type, REPLY, our_hardware,
                      self.target_ip, self.sender_hardware, self.sender_ip)


def encode(hardware_type: int, protocol_type: int, operation: int, sender_hardware: bytes,
           sender_ip: bytes, target_hardware: bytes, target_ip: bytes) -> bytes:
    """One ARP message (addresses as bytes)."""
    return b"".join((_HEADER.pack(hardware_type, protocol_type, len(sender_hardware), 4,
                                  operation),
                     sender_hardware, sender_ip, target_hardware, target_ip))


def parse(packet: bytes, hardware_type: int, hardware_size: int) -> ArpMessage | None:
    """The IPv4 ARP request or reply in `packet` for this kind of hardware, or None."""
    if len(packet) < _HEADER.size + 2 * (hardware_size + 4):
        return None
    hardware, protocol, hlen, plen, operation = _HEADER.unpack_from(packet)
    if (hardware != hardware_type or protocol not in (PROTOCOL_IPV4, PROTOCOL_AX25_IP)
            or hlen != hardware_size or plen != 4 or operation not in (REQUEST, REPLY)):
        return None
    offset = _HEADER.size
    sender_hardware = packet[offset:offset + hlen]
    sender_ip = packet[offset + hlen:offset + hlen + 4]
    target_ip = packet[offset + 2 * hlen + 4:offset + 2 * hlen + 8]
    return ArpMessage(hardware, protocol, operation, sender_hardware, sender_ip, target_ip)


def request(hardware_type: int, protocol_type: int, sender_hardware: bytes, sender_ip: str,
            target_ip: str) -> bytes:
    """An ARP request asking who has `target_ip` (sender 0.0.0.0: a probe)."""
    return encode(hardware_type, protocol_type, REQUEST, sender_hardware,
                  ipaddress.IPv4Address(sender_ip).packed, bytes(len(sender_hardware)),
                  ipaddress.IPv4Address(target_ip).packed)


class AddressSet:
    """The IPv4 addresses the link answers ARP for: listed networks, or (None) any address
    but the asker's own, which suits a point-to-point radio link; on a shared channel (many
    stations) `any` means our own addresses only."""

    def __init__(self, networks: Iterable[ipaddress.IPv4Network] | None) -> None:
        self.networks = None if networks is None else tuple(networks)

    def __str__(self) -> str:
        return "any" if self.networks is None else ",".join(map(str, self.networks))

    def answers(self, message: ArpMessage, shared: Sequence[bytes] | None = None) -> bool:
        """Whether `message` is a request to answer: for our addresses, neither a probe (the
        asker checks its own address is free) nor an announcement. `shared`: the channel has
        many stations and these are our own addresses (packed), all that `any` answers."""
        if message.operation != REQUEST or message.probe or message.announcement:
            return False
        if self.networks is None:
            return shared is None or message.target_ip in shared
        target = ipaddress.IPv4Address(message.target_ip)
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
