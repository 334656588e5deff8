"""The registry of link frame types: what the first byte of a frame on a link says it carries.

The high nibble of the first byte names the frame's type (IP packets carry their version
there); the low nibble belongs to the layer that owns the type (IPv4's header length, a
fragment's packet id). Code reads and writes those nibbles with `type_nibble()`,
`low_nibble()` and `frame_byte()` rather than with literals. One type, EXTENSION, has a second
byte that names a subtype, with a registry of its own (EXTENSIONS): new layers take a subtype
there rather than one of the few free nibbles. A layer fills the slot reserved for it here
instead of inventing a value; docs/architecture.md has the same tables (a unit test compares
them). Pure: no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Layer(enum.StrEnum):
    """The layers between the tunnel and the link, in send order (SEND_ORDER)."""

    TUNNEL = "tunnel"
    OFFLOAD = "offload"
    QUEUE = "queue"
    COMPRESS = "compress"
    ENCRYPT = "encrypt"
    FRAGMENT = "fragment"
    REPAIR = "repair"
    LINK = "link"


SEND_ORDER = tuple(Layer)
# Reassembly first, then authentication, before any other layer parses a frame.
RECEIVE_ORDER = tuple(reversed(SEND_ORDER))


class Status(enum.StrEnum):
    """Whether a frame type is sent today, has a slot for a coming layer, or is kept free."""

    IN_USE = "in use"
    RESERVED = "reserved"
    BLOCKED = "blocked"  # never assigned (see VJ_UNCOMPRESSED_TCP)


# The high nibble of a frame's first byte, by type.
KEEPALIVE = 0x0
OFFLOAD_CHUNK = 0x1
EXTENSION = 0x2
IPV4 = 0x4
COMPRESSED_SEQUENTIAL_ACK = 0x5
IPV6 = 0x6
VJ_UNCOMPRESSED_TCP = 0x7
HANDSHAKE_INITIATION = 0x8
HANDSHAKE_RESPONSE = 0x9
COMPRESSED_SEQUENTIAL = 0xA
TRANSPORT_DATA = 0xB
COMPRESSED = 0xC
UNCOMPRESSED = 0xD
CONTEXT_REFRESH = 0xE
FRAGMENT = 0xF


def type_nibble(first_byte: int) -> int:
    """The type of a frame (its first byte's high nibble): one of the nibbles above."""
    return first_byte >> 4


def low_nibble(first_byte: int) -> int:
    """The low nibble of a frame's first byte: the field of the layer that owns the type."""
    return first_byte & 0x0F


def frame_byte(kind: int, low: int = 0) -> int:
    """The first byte of a frame of type `kind` whose owner puts `low` (0-15) in the low nibble."""
    return kind << 4 | low


# The whole of a keepalive frame (`--keepalive`): consumed by the receiving tunnel layer.
KEEPALIVE_FRAME = bytes([frame_byte(KEEPALIVE)])


@dataclass(frozen=True)
class FrameType:
    """One slot of the registry: frames whose first byte is `first`..`last`."""

    nibble: int
    name: str
    layer: Layer
    status: Status

    @property
    def first(self) -> int:
        return frame_byte(self.nibble)

    @property
    def last(self) -> int:
        return frame_byte(self.nibble, 0xF)


REGISTRY: tuple[FrameType, ...] = (
    FrameType(KEEPALIVE, "keepalive", Layer.TUNNEL, Status.IN_USE),
    FrameType(OFFLOAD_CHUNK, "offload chunk", Layer.OFFLOAD, Status.IN_USE),
    # Subtypes in EXTENSIONS below, each of its own layer; the tunnel layer counts what reaches it
    FrameType(EXTENSION, "extension", Layer.TUNNEL, Status.RESERVED),
    FrameType(IPV4, "IPv4 packet", Layer.TUNNEL, Status.IN_USE),
    # the same with the ACK number's low byte: a segment whose ACK moved (compression.md)
    FrameType(COMPRESSED_SEQUENTIAL_ACK, "compressed, sequential, ACK", Layer.COMPRESS,
              Status.IN_USE),
    FrameType(IPV6, "IPv6 packet", Layer.TUNNEL, Status.IN_USE),
    # RFC 1144 (VJ over serial) marks its uncompressed TCP frames with this nibble and its
    # compressed ones with 0x80-0xFF, so VJ owns a link alone; the nibble stays free for it.
    FrameType(VJ_UNCOMPRESSED_TCP, "VJ uncompressed TCP", Layer.COMPRESS, Status.BLOCKED),
    FrameType(HANDSHAKE_INITIATION, "handshake initiation", Layer.ENCRYPT, Status.IN_USE),
    FrameType(HANDSHAKE_RESPONSE, "handshake response", Layer.ENCRYPT, Status.IN_USE),
    # `auto`'s 3-byte frame of a TCP segment that follows the ones before it (compression.md)
    FrameType(COMPRESSED_SEQUENTIAL, "compressed, sequential", Layer.COMPRESS, Status.IN_USE),
    FrameType(TRANSPORT_DATA, "transport data", Layer.ENCRYPT, Status.IN_USE),
    FrameType(COMPRESSED, "compressed", Layer.COMPRESS, Status.IN_USE),
    FrameType(UNCOMPRESSED, "uncompressed", Layer.COMPRESS, Status.IN_USE),
    FrameType(CONTEXT_REFRESH, "context refresh", Layer.COMPRESS, Status.IN_USE),
    FrameType(FRAGMENT, "fragment", Layer.FRAGMENT, Status.IN_USE),
)

_BY_NIBBLE: tuple[FrameType | None, ...] = tuple(
    next((kind for kind in REGISTRY if kind.nibble == nibble), None) for nibble in range(16))


def classify(first_byte: int) -> FrameType | None:
    """The type of a frame that starts with `first_byte`; None for an unassigned value."""
    if not 0 <= first_byte <= 0xFF:
        raise ValueError(f"a frame's first byte is 0..255, not {first_byte}")
    return _BY_NIBBLE[type_nibble(first_byte)]


# An extension frame starts with two bytes: EXTENSION_BYTE (the EXTENSION nibble, and the
# extension header's version in the low nibble: EXTENSION_VERSION, 0) and the subtype; what
# follows belongs to the subtype's owner. A receiver counts a frame of another version, or of a
# subtype no layer on its side takes, as drops.UNKNOWN_EXTENSION (the tunnel layer does, for
# whatever reaches it).
EXTENSION_VERSION = 0
EXTENSION_BYTE = frame_byte(EXTENSION, EXTENSION_VERSION)
EXTENSION_HEADER = 2  # bytes

# Extension subtypes (the second byte)
PEER_CONTROL = 0x01
LINK_PROBE = 0x02
REPAIR = 0x03
COOKIE_REPLY = 0x04


@dataclass(frozen=True)
class ExtensionType:
    """One slot of the extension registry: frames that start with EXTENSION_BYTE, `subtype`.
    `owner`: the layer (or the coming work) that sends and consumes them."""

    subtype: int
    name: str
    owner: str
    status: Status


EXTENSIONS: tuple[ExtensionType, ...] = (
    ExtensionType(PEER_CONTROL, "peer control", "multipoint", Status.RESERVED),
    ExtensionType(LINK_PROBE, "link probe", "multi-link", Status.IN_USE),
    ExtensionType(REPAIR, "repair", "loss repair (ARQ/FEC)", Status.IN_USE),
    ExtensionType(COOKIE_REPLY, "cookie reply", "encrypt", Status.IN_USE),
)


def extension_header(subtype: int) -> bytes:
    """The first two bytes of an extension frame of `subtype`."""
    return bytes((EXTENSION_BYTE, subtype))


def extension_subtype(frame: bytes) -> int | None:
    """The subtype of an extension frame of this version; None for any other frame."""
    if len(frame) < EXTENSION_HEADER or frame[0] != EXTENSION_BYTE:
        return None
    return frame[1]
