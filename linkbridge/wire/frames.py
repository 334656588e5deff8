"""The registry of link frame types: what the first byte of a frame on a link says it carries.

The high nibble of the first byte names the frame's type (IP packets carry their version
there); the low nibble belongs to the layer that owns the type (IPv4's header length, a
fragment's packet id). A layer fills the slot reserved for it here instead of inventing a
value; docs/architecture.md has the same table (a unit test compares them). Pure: no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Layer(enum.StrEnum):
    """The layers between the tunnel and the link, in send order (SEND_ORDER)."""

    TUNNEL = "tunnel"
    OFFLOAD = "offload"
    COMPRESS = "compress"
    ENCRYPT = "encrypt"
    FRAGMENT = "fragment"
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
IPV4 = 0x4
IPV6 = 0x6
VJ_UNCOMPRESSED_TCP = 0x7
HANDSHAKE_INITIATION = 0x8
HANDSHAKE_RESPONSE = 0x9
COOKIE_REPLY = 0xA
TRANSPORT_DATA = 0xB
COMPRESSED = 0xC
UNCOMPRESSED = 0xD
CONTEXT_REFRESH = 0xE
FRAGMENT = 0xF

# The whole of a keepalive frame (`--keepalive`): consumed by the receiving tunnel layer.
KEEPALIVE_FRAME = bytes([KEEPALIVE << 4])


@dataclass(frozen=True)
class FrameType:
    """One slot of the registry: frames whose first byte is `first`..`last`."""

    nibble: int
    name: str
    layer: Layer
    status: Status

    @property
    def first(self) -> int:
        return self.nibble << 4

    @property
    def last(self) -> int:
        return self.nibble << 4 | 0xF


REGISTRY: tuple[FrameType, ...] = (
    FrameType(KEEPALIVE, "keepalive", Layer.TUNNEL, Status.IN_USE),
    FrameType(OFFLOAD_CHUNK, "offload chunk", Layer.OFFLOAD, Status.IN_USE),
    FrameType(IPV4, "IPv4 packet", Layer.TUNNEL, Status.IN_USE),
    FrameType(IPV6, "IPv6 packet", Layer.TUNNEL, Status.IN_USE),
    # RFC 1144 (VJ over serial) marks its uncompressed TCP frames with this nibble and its
    # compressed ones with 0x80-0xFF, so VJ owns a link alone; the nibble stays free for it.
    FrameType(VJ_UNCOMPRESSED_TCP, "VJ uncompressed TCP", Layer.COMPRESS, Status.BLOCKED),
    FrameType(HANDSHAKE_INITIATION, "handshake initiation", Layer.ENCRYPT, Status.IN_USE),
    FrameType(HANDSHAKE_RESPONSE, "handshake response", Layer.ENCRYPT, Status.IN_USE),
    FrameType(COOKIE_REPLY, "cookie reply", Layer.ENCRYPT, Status.RESERVED),
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
    return _BY_NIBBLE[first_byte >> 4]
