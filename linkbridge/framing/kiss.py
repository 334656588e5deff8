"""KISS framing (the TNC host protocol) without I/O: frames in, bytes out, and back.

A KISS frame is FEND, a command byte, the data, FEND, with FEND and FESC inside escaped by the
byte stuffing SLIP uses (framing/stuffing.py; the command byte is escaped too). The command
byte's high nibble is the TNC port (0..15), its low nibble the command: DATA (0) carries a
frame for the radio, the others set TNC parameters; 0xFF alone leaves KISS mode.

Linux's mkiss driver may also send the SMACK and FlexNet variants of a data frame, with a
CRC-16 appended: SMACK sets bit 0x80 of the command byte (CRC-16/ARC, low byte first),
FlexNet bit 0x20 (FlexNet's CRC, high byte first). `KissDecoder` accepts those for its port
once the CRC checks out (a flag the port number itself uses means that port: SMACK works on
ports 0..7, FlexNet on ports 0, 1, 4, 5, 8, 9, 12, 13; mkiss always uses port 0). Frames for
other ports, commands and damaged frames are counted drops (the `kiss_*` reasons below,
described in `REASONS`); a damaged or cut frame also yields a `Lost` mark (framing/events.py)
where it was, a frame that is only not for us does not.
"""

from __future__ import annotations

from collections import Counter

from linkbridge.framing.events import Lost
from linkbridge.framing.stuffing import (
    END,
    ESC,
    ESC_END,
    ESC_ESC,
    StuffedDecoder,
    StuffingErrors,
    encode,
    encoded_size,
)

# The drop reasons the decoder counts (a link that uses it declares them: Link.drop_reasons)
BAD_ESCAPE = "kiss_bad_escape"
OVERSIZE = "kiss_oversize"
GARBAGE = "kiss_garbage"
CRC = "kiss_crc"
OTHER_PORT = "kiss_other_port"
NOT_DATA = "kiss_not_data"
REASONS = {
    BAD_ESCAPE: "a KISS frame with FESC followed by anything but TFEND or TFESC",
    OVERSIZE: "a KISS frame longer than the link's MTU allows",
    GARBAGE: "bytes before the first FEND (the line was joined mid-frame)",
    CRC: "a SMACK or FlexNet frame whose CRC-16 does not match",
    OTHER_PORT: "a KISS data frame for another TNC port",
    NOT_DATA: "a KISS command frame (TXDELAY...) where data was expected",
}

FEND, FESC, TFEND, TFESC = END, ESC, ESC_END, ESC_ESC

# Commands: the low nibble of the command byte
DATA = 0x00
TXDELAY = 0x01  # keying delay, in 10 ms units
PERSISTENCE = 0x02  # p-persistence: p = (value + 1) / 256
SLOTTIME = 0x03  # in 10 ms units
TXTAIL = 0x04  # in 10 ms units (obsolete, some TNCs still honour it)
FULLDUPLEX = 0x05  # 0 half duplex, anything else full duplex
SETHARDWARE = 0x06  # TNC-specific bytes
RETURN = 0xFF  # leave KISS mode (the whole command byte, no port)
MAX_PORT = 15

SMACK = 0x80  # command byte flag: a SMACK data frame with a CRC-16/ARC trailer
FLEX = 0x20  # command byte flag: a FlexNet data frame with a FlexNet CRC trailer
CRC_TRAILER = 2
EXIT_KISS = encode(bytes([RETURN]))


def command_byte(command: int, port: int = 0) -> int:
    """The command byte for `command` on TNC `port`."""
    if not 0 <= port <= MAX_PORT:
        raise ValueError(f"KISS port must be 0..{MAX_PORT}")
    return port << 4 | command


def encode_data(payload: bytes, port: int = 0) -> bytes:
    """One KISS data frame carrying `payload` on TNC `port`."""
    return encode(bytes([command_byte(DATA, port)]) + payload)


def data_frame_size(payload: bytes, port: int = 0) -> int:
    """Line bytes `encode_data(payload, port)` takes, without building it."""
    return encoded_size(payload) + (2 if port << 4 in (FEND, FESC) else 1)


def encode_command(command: int, value: bytes, port: int = 0) -> bytes:
    """A KISS command frame (TXDELAY, PERSISTENCE, ...) with its value bytes."""
    return encode(bytes([command_byte(command, port)]) + value)


def _reflected_table(poly: int) -> tuple[int, ...]:
    table = []
    for index in range(256):
        value = index
        for _ in range(8):
            value = value >> 1 ^ poly if value & 1 else value >> 1
        table.append(value)
    return tuple(table)


_ARC = _reflected_table(0xA001)  # CRC-16/ARC: polynomial 0x8005, reflected, initial value 0


def crc_arc(data: bytes, crc: int = 0) -> int:
    """CRC-16/ARC of `data` (SMACK's CRC); over a frame and its trailer it comes to 0."""
    for byte in data:
        crc = crc >> 8 ^ _ARC[(crc ^ byte) & 0xFF]
    return crc


def _flex_entry(index: int) -> int:
    """FlexNet's CRC table entry: an affine map of the index (constant 0x0F87, one basis
    value per bit), as mkiss's table of 256 values works out to."""
    value = 0x0F87
    for bit in range(8):
        if index >> bit & 1:
            value ^= (0x1189 << bit) if bit < 4 else (0x1081 << (bit - 4))
    return value


_FLEX = tuple(_flex_entry(index) for index in range(256))
FLEX_RESIDUE = 0x7070  # what the FlexNet CRC of a frame followed by its trailer comes to


def crc_flex(data: bytes, crc: int = 0xFFFF) -> int:
    """FlexNet's CRC-16 of `data`, appended high byte first."""
    for byte in data:
        crc = (crc << 8 & 0xFFFF) ^ _FLEX[(crc >> 8 ^ byte) & 0xFF]
    return crc


def smack_frame(payload: bytes, port: int = 0) -> bytes:
    """The SMACK variant of a data frame (what mkiss sends when it tries SMACK)."""
    body = bytes([SMACK | command_byte(DATA, port)]) + payload
    return encode(body + crc_arc(body).to_bytes(CRC_TRAILER, "little"))


def flex_frame(payload: bytes, port: int = 0) -> bytes:
    """The FlexNet variant of a data frame (what mkiss sends when it tries FlexNet)."""
    body = bytes([FLEX | command_byte(DATA, port)]) + payload
    return encode(body + crc_flex(body).to_bytes(CRC_TRAILER, "big"))


class KissDecoder(StuffedDecoder):
    """Turns a KISS byte stream, fed in chunks of any size, into the data of one TNC port.

    `feed()` returns the payloads of the data frames for `port` (plain, SMACK or FlexNet),
    each at most `max_data` bytes, and a `Lost` mark where a frame was damaged or cut;
    everything else is counted in `errors` by reason. Like the SLIP decoder it starts out of
    step, resynchronises at every FEND and keeps its memory bounded by the largest frame it
    accepts.
    """

    reasons = StuffingErrors(bad_escape=BAD_ESCAPE, oversize=OVERSIZE, garbage=GARBAGE)

    def __init__(self, max_data: int, port: int = 0, errors: Counter[str] | None = None) -> None:
        super().__init__(max_data + 1 + CRC_TRAILER, errors)
        self.port = port
        self.max_data = max_data
        self._plain = command_byte(DATA, port)

    def feed(self, data: bytes) -> list[bytes | Lost]:
        payloads: list[bytes | Lost] = []
        for frame in super().feed(data):
            payload = self._payload(frame) if type(frame) is bytes else frame
            if payload is not None:
                payloads.append(payload)
        return payloads

    def _payload(self, frame: bytes) -> bytes | Lost | None:
        """The data of a frame for this decoder's port, a loss mark for a damaged one, or None
        for one not for us (counted)."""
        command = frame[0]
        if command == self._plain:
            payload = frame[1:]
        elif command & 0x0F != DATA or command == RETURN:
            self.errors[NOT_DATA] += 1
            return None
        elif command & SMACK and command & ~SMACK == self._plain:
            if len(frame) < 1 + CRC_TRAILER or crc_arc(frame):
                return self._lost(CRC)
            payload = frame[1:-CRC_TRAILER]
        elif command & FLEX and command & ~FLEX == self._plain:
            if len(frame) < 1 + CRC_TRAILER or crc_flex(frame) != FLEX_RESIDUE:
                return self._lost(CRC)
            payload = frame[1:-CRC_TRAILER]
        else:
            self.errors[OTHER_PORT] += 1
            return None
        if len(payload) > self.max_data:
            return self._lost(OVERSIZE, len(payload))
        return payload

    def _lost(self, reason: str, size: int | None = None) -> Lost:
        self.errors[reason] += 1
        return Lost(reason, size)
