"""Drop reasons: the names under which `Counters.drop()` counts a packet that was not delivered.

The reasons the core counts are here, once, and `REASONS` describes each name as counted (a
family's prefix is spelt out). A codec names its own (framing/slip.py, kiss.py, crc16.py) and
a plugin declares its own on its link class (`Link.drop_reasons`). `linkbridge status`, the
log, the docs and tests show these strings, so they never change. Plugins reach this module as
`linkbridge.plugin.drops`. Pure constants.
"""

from __future__ import annotations

# Any endpoint or link (REASONS below says what each one means)
MTU = "mtu"
QUEUE_FULL = "queue_full"
SEND_ERROR = "send_error"
TOO_BIG = "too_big"
FILTERED = "filtered"
TUN_WRITE_ERROR = "tun_write_error"
NOT_CONNECTED = "not_connected"
KEEPALIVE = "keepalive"
UNKNOWN_EXTENSION = "unknown_extension"

# A frame from a link that is no well-formed IP packet, counted on the link side as MALFORMED
# followed by the problem (malformed_empty, ...): those wire.packet.packet_problem() finds, or a
# link's own.
MALFORMED = "malformed_"  # the prefix of the family
EMPTY = "empty"  # a frame of no bytes
TRUNCATED = "truncated"  # shorter than the smallest header of its IP version
BAD_HEADER_LENGTH = "bad_header_length"  # an IPv4 header length under 20 or past the frame's end
LENGTH_MISMATCH = "length_mismatch"  # the IP length field disagrees with the frame's length
NOT_IP = "not_ip"  # neither IPv4 nor IPv6
MALFORMED_FRAME = MALFORMED + "frame"

# The loss-repair layer (wire/repair.py)
REPAIR_MALFORMED = "repair_malformed"
REPAIR_DUPLICATE = "repair_duplicate"
REPAIR_UNREPAIRED = "repair_unrepaired"

# The fragmentation layer (wire/fragment.py)
FRAGMENT_TOO_BIG = "fragment_too_big"
FRAGMENT_BAD_HEADER = "fragment_bad_header"
FRAGMENT_DUPLICATE = "fragment_duplicate"
FRAGMENT_MISMATCH = "fragment_mismatch"
REASSEMBLY_TIMEOUT = "reassembly_timeout"
REASSEMBLY_OVERFLOW = "reassembly_overflow"
REASSEMBLY_OVERSIZE = "reassembly_oversize"

# The offload layer (wire/offload.py, docs/offload.md)
OFFLOAD_BAD_CHUNK = "offload_bad_chunk"
OFFLOAD_BAD_HEADER = "offload_bad_header"
OFFLOAD_DUPLICATE = "offload_duplicate"
OFFLOAD_MISMATCH = "offload_mismatch"
OFFLOAD_INCOMPLETE = "offload_incomplete"
OFFLOAD_TOO_BIG = "offload_too_big"
OFFLOAD_UNAGREED = "offload_unagreed"

# A stream link's connection (plugin/streamlink.py)
UNPLUGGED = "unplugged"
WRITE_TIMEOUT = "write_timeout"

# The encrypt layer (wire/secure.py), counted on the link side
AUTH = "auth"
REPLAY = "replay"
UNKNOWN_KEY = "unknown_key"
NOT_ENCRYPTED = "not_encrypted"
NO_SESSION = "no_session"
HANDSHAKE_MALFORMED = "handshake_malformed"
HANDSHAKE_MAC = "handshake_mac"
HANDSHAKE_RATE = "handshake_rate"
HANDSHAKE_DUPLICATE = "handshake_duplicate"
HANDSHAKE_COOKIE = "handshake_cookie"
HANDSHAKE_AUTH = "handshake_auth"
HANDSHAKE_PEER = "handshake_peer"
HANDSHAKE_REPLAY = "handshake_replay"
HANDSHAKE_UNEXPECTED = "handshake_unexpected"
HANDSHAKE_CIPHER = "handshake_cipher"

# Header compression (wire/compress/): a frame the decompressor could not turn back into the
# packet that was sent; nothing it rebuilds wrongly reaches the tunnel
COMPRESS_BAD_CHECKSUM = "compress_bad_checksum"
COMPRESS_NO_CONTEXT = "compress_no_context"
COMPRESS_STALE = "compress_stale"
COMPRESS_TOSSED = "compress_tossed"
COMPRESS_TRUNCATED = "compress_truncated"
COMPRESS_BAD_FRAME = "compress_bad_frame"

# The link-aware queue (wire/queue.py, docs/queue.md)
QUEUE_RETRANSMIT = "queue_retransmit"
QUEUE_ACK_FILTERED = "queue_ack_filtered"
QUEUE_OVERFLOW = "queue_overflow"

# Multipoint (wire/peers.py, datapath/multipoint.py)
NO_PEER = "no_peer"
SOURCE_NOT_ALLOWED = "source_not_allowed"
ROAM_REFUSED = "roam_refused"
ROAM_RATE = "roam_rate"

# Several links under one tunnel (wire/multilink.py, datapath/multilink.py)
DUPLICATE = "duplicate"
LINK_PROBE_MALFORMED = "link_probe_malformed"


REASONS = {
    MTU: "longer than the link (or a layer) carries",
    QUEUE_FULL: "no room in the kernel's queue (a socket's, the device's) or the link's",
    SEND_ERROR: "a send the kernel (or a stream link) refused for another reason",
    TOO_BIG: "a datagram the kernel refused as too long for its path (EMSGSIZE)",
    FILTERED: "a datagram from a source the endpoint does not accept",
    TUN_WRITE_ERROR: "the TUN device refused a packet",
    NOT_CONNECTED: "sent while a stream link had no connection",
    KEEPALIVE: "a keepalive frame, consumed by the tunnel layer (not an error)",
    UNKNOWN_EXTENSION: "an extension frame (wire/frames.py) of a subtype no layer here takes",
    EMPTY: "an empty packet, which no link carries",
    MALFORMED + EMPTY: "a frame of no bytes from the link",
    MALFORMED + TRUNCATED: "a frame from the link shorter than its IP version's header",
    MALFORMED + BAD_HEADER_LENGTH: "a frame whose IPv4 header length is under 20 or too long",
    MALFORMED + LENGTH_MISMATCH: "a frame whose IP length field disagrees with its length",
    MALFORMED + NOT_IP: "a frame from the link that is neither IPv4 nor IPv6",
    MALFORMED_FRAME: "a stream link's frame that cannot be decoded",
    REPAIR_MALFORMED: "a repair frame too short or with fields that contradict each other",
    REPAIR_DUPLICATE: "a repaired link's frame received before (a retransmission or a copy)",
    REPAIR_UNREPAIRED: "a frame lost on the link that neither retransmission nor parity rebuilt",
    FRAGMENT_TOO_BIG: "a packet that needs more fragments than a frame can number",
    FRAGMENT_BAD_HEADER: "a fragment too short to hold a header and a piece",
    FRAGMENT_DUPLICATE: "a fragment seen before, or of a packet delivered",
    FRAGMENT_MISMATCH: "a fragment that contradicts its packet's fragment count",
    REASSEMBLY_TIMEOUT: "a packet whose fragments did not all come in time",
    REASSEMBLY_OVERFLOW: "a partial packet evicted by a newer one",
    REASSEMBLY_OVERSIZE: "fragments that add up past the largest packet",
    OFFLOAD_BAD_CHUNK: "an offload frame too short, or with an impossible index",
    OFFLOAD_BAD_HEADER: "a vnet header that does not fit its packet",
    OFFLOAD_DUPLICATE: "an offload chunk seen before",
    OFFLOAD_MISMATCH: "an offload chunk that contradicts its packet's chunk count",
    OFFLOAD_INCOMPLETE: "a super-packet evicted before all its chunks came",
    OFFLOAD_TOO_BIG: "a packet that needs more chunks than a frame can number",
    OFFLOAD_UNAGREED: "a super-packet read while the peer takes none",
    UNPLUGGED: "sent while the device (a serial port) was gone",
    WRITE_TIMEOUT: "the line took nothing for too long (flow control held it)",
    AUTH: "encrypted data that does not authenticate (forged, corrupted, wrong keys)",
    REPLAY: "encrypted data whose counter was seen before or is behind the window",
    UNKNOWN_KEY: "encrypted data for a session this side does not have (a restart)",
    NOT_ENCRYPTED: "a frame of another type (plain IP) while encryption is on",
    NO_SESSION: "a packet pushed out of the queue that waits for a handshake",
    HANDSHAKE_MALFORMED: "a handshake message of the wrong size",
    HANDSHAKE_MAC: "a handshake message not made for this side's public key",
    HANDSHAKE_RATE: "a handshake message over the rate limit (a flood)",
    HANDSHAKE_DUPLICATE: "an exact copy of a recent handshake message (a replay)",
    HANDSHAKE_COOKIE: "an initiation over the rate limit, answered with a cookie reply",
    HANDSHAKE_AUTH: "a handshake message that does not authenticate",
    HANDSHAKE_PEER: "an initiation from a key other than the configured peer's",
    HANDSHAKE_REPLAY: "an initiation no newer than one accepted before",
    HANDSHAKE_UNEXPECTED: "a handshake response to no initiation of ours",
    HANDSHAKE_CIPHER: "a handshake whose peer allows no cipher this side does",
    COMPRESS_BAD_CHECKSUM: "a decompressed packet that failed its checksum check",
    COMPRESS_NO_CONTEXT: "compressed against a context this end lacks",
    COMPRESS_STALE: "compressed against an older context (a late frame)",
    COMPRESS_TOSSED: "VJ: tossed after a lost frame, until a frame names its connection",
    COMPRESS_TRUNCATED: "a frame that ends inside its compressed header",
    COMPRESS_BAD_FRAME: "a compressed frame with a field no compressor writes",
    QUEUE_RETRANSMIT: "a TCP segment repeating one queued or sent within a link round trip",
    QUEUE_ACK_FILTERED: "a pure TCP ACK superseded by a newer ACK of its flow in the queue",
    QUEUE_OVERFLOW: "the oldest packet of the largest flow, the queue over its limit",
    NO_PEER: "a packet to an address no peer's allowed prefixes contain",
    SOURCE_NOT_ALLOWED: "a packet from a peer whose source is not in that peer's prefixes",
    ROAM_REFUSED: "a frame from an address no peer has that no peer's session vouches for",
    ROAM_RATE: "a frame from an address no peer has, past the rate of roaming checks",
    DUPLICATE: "a copy of a frame already delivered over another link (multi-link)",
    LINK_PROBE_MALFORMED: "a link probe frame of an unknown kind or too short",
}
