"""AX.25 UI frames without I/O: callsigns, the address field, and IP (PID 0xCC) inside.

Only what IP over packet radio needs: connectionless UI frames (control 0x03), as Linux's
AX.25 stack sends them in datagram mode. A frame is the destination and source addresses
(7 bytes each: six callsign characters shifted left one bit, then the SSID byte), up to eight
digipeaters, the control byte, the PID and the information field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ADDRESS_SIZE = 7
MAX_DIGIPEATERS = 8
UI = 0x03  # control byte of an unnumbered information frame (the P/F bit 0x10 may be set)
POLL_FINAL = 0x10
PID_IP = 0xCC
PID_ARP = 0xCD
PID_NO_LAYER3 = 0xF0  # plain text: identification beacons, APRS
HEADER_SIZE = 2 * ADDRESS_SIZE + 2  # the smallest header: two addresses, control, PID
MAX_HEADER_SIZE = (2 + MAX_DIGIPEATERS) * ADDRESS_SIZE + 2

_END_OF_ADDRESS = 0x01  # last address of the field
_COMMAND = 0x80  # C bit of the destination (command frame, AX.25 v2); H bit of a digipeater
_RESERVED = 0x60  # the two reserved SSID bits, sent as ones
_SSID_MASK = 0x1E
_CALLSIGN = re.compile(r"([A-Z0-9]{1,6})(?:-(\d{1,2}))?\Z")


@dataclass(frozen=True)
class Callsign:
    """A station address: up to six letters and digits and an SSID 0..15 (N0CALL-7)."""

    call: str
    ssid: int = 0

    @classmethod
    def parse(cls, text: str) -> Callsign:
        """`CALL` or `CALL-SSID`, case-insensitive; ValueError with the reason otherwise."""
        match = _CALLSIGN.match(text.upper())
        if not match or int(match.group(2) or 0) > 15:
            raise ValueError("expected a callsign of 1-6 letters/digits and an optional SSID "
                             "0-15, e.g. N0CALL-7")
        return cls(match.group(1), int(match.group(2) or 0))

    def encode(self, *, last: bool = False, command: bool = False) -> bytes:
        """The 7-byte address field entry."""
        shifted = bytes(ord(char) << 1 for char in self.call.ljust(6))
        ssid = _RESERVED | self.ssid << 1 | (_END_OF_ADDRESS if last else 0)
        return shifted + bytes([ssid | (_COMMAND if command else 0)])

    @classmethod
    def decode(cls, field: bytes) -> Callsign | None:
        """The callsign of a 7-byte address entry, or None when it holds no valid characters."""
        chars = bytes(byte >> 1 for byte in field[:6]).decode("ascii", "replace").rstrip()
        if not chars or not all(char.isascii() and char.isalnum() for char in chars):
            return None
        return cls(chars.upper(), (field[6] & _SSID_MASK) >> 1)

    def __str__(self) -> str:
        return f"{self.call}-{self.ssid}" if self.ssid else self.call


BROADCAST = Callsign("QST")  # where Linux sends ARP requests and broadcasts
ID = Callsign("ID")  # destination of identification beacons


@dataclass(frozen=True)
class UiFrame:
    """A parsed UI frame: addresses, PID, information field, and whether digipeaters that
    should repeat it still have to."""

    destination: Callsign
    source: Callsign
    pid: int
    info: bytes
    pending_digipeaters: bool = False


def ui_frame(destination: Callsign, source: Callsign, pid: int, info: bytes) -> bytes:
    """A UI command frame from `source` to `destination`, no digipeaters."""
    return b"".join((destination.encode(command=True), source.encode(last=True),
                     bytes([UI, pid]), info))


def parse_ui(frame: bytes) -> UiFrame | str:
    """The UI frame in `frame`, or why it is none: "malformed" or "not_ui"."""
    addresses: list[bytes] = []
    offset = 0
    while True:
        entry = frame[offset:offset + ADDRESS_SIZE]
        if len(entry) < ADDRESS_SIZE or len(addresses) == 2 + MAX_DIGIPEATERS:
            return "malformed"
        addresses.append(entry)
        offset += ADDRESS_SIZE
        if entry[6] & _END_OF_ADDRESS:
            break
    if len(addresses) < 2 or len(frame) < offset + 1:
        return "malformed"
    destination, source = (Callsign.decode(entry) for entry in addresses[:2])
    if destination is None or source is None:
        return "malformed"
    if frame[offset] & ~POLL_FINAL != UI:
        return "not_ui"  # connected mode (SABM, UA, DISC, RR, I...): no PID in most of them
    if len(frame) < offset + 2:
        return "malformed"
    pending = any(not entry[6] & _COMMAND for entry in addresses[2:])
    return UiFrame(destination, source, frame[offset + 1], frame[offset + 2:], pending)
