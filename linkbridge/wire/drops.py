"""Drop reasons: the names under which `Counters.drop()` counts a packet that was not delivered.

Every reason the core and the built-in links count is here, once. `linkbridge status`, the log,
the docs and tests show these strings, so they never change. Plugins reach this module as
`linkbridge.plugin.drops`. Pure constants.
"""

from __future__ import annotations

# Any endpoint or link
MTU = "mtu"  # longer than the link carries (its `mtu`)
QUEUE_FULL = "queue_full"  # no room in the kernel's queue (a socket's, the device's) or the link's
SEND_ERROR = "send_error"  # a send the kernel (or a stream link) refused for another reason
TOO_BIG = "too_big"  # a datagram the kernel refused as too long for its path (EMSGSIZE)
FILTERED = "filtered"  # a datagram from a source the endpoint does not accept
TUN_WRITE_ERROR = "tun_write_error"  # the TUN device refused a packet
NOT_CONNECTED = "not_connected"  # sent while a stream link had no connection
KEEPALIVE = "keepalive"  # a keepalive frame: consumed by the tunnel layer, never written to the TUN
UNKNOWN_EXTENSION = "unknown_extension"  # an extension frame (wire/frames.py) no layer here takes

# A frame from a link that is no well-formed IP packet, counted on the link side as MALFORMED
# followed by the problem (malformed_empty, ...): those wire.packet.packet_problem() finds, or a
# link's own.
MALFORMED = "malformed_"  # the prefix of the family
EMPTY = "empty"  # a frame of no bytes
TRUNCATED = "truncated"  # shorter than the smallest header of its IP version
BAD_HEADER_LENGTH = "bad_header_length"  # an IPv4 header length under 20 or past the frame's end
LENGTH_MISMATCH = "length_mismatch"  # the IP length field disagrees with the frame's length
NOT_IP = "not_ip"  # neither IPv4 nor IPv6
MALFORMED_FRAME = MALFORMED + "frame"  # a stream link's frame that cannot be decoded

# The fragmentation layer (wire/fragment.py)
FRAGMENT_TOO_BIG = "fragment_too_big"  # a packet that needs more than MAX_FRAGMENTS frames
FRAGMENT_BAD_HEADER = "fragment_bad_header"  # a fragment too short to hold a header and a piece
FRAGMENT_DUPLICATE = "fragment_duplicate"  # a fragment seen before, or of a packet delivered
FRAGMENT_MISMATCH = "fragment_mismatch"  # a fragment that contradicts its packet's fragment count
REASSEMBLY_TIMEOUT = "reassembly_timeout"  # a packet whose fragments did not all come in time
REASSEMBLY_OVERFLOW = "reassembly_overflow"  # a partial packet evicted by a newer one
REASSEMBLY_OVERSIZE = "reassembly_oversize"  # fragments that add up past the largest packet

# The offload layer (wire/offload.py, docs/offload.md)
OFFLOAD_BAD_CHUNK = "offload_bad_chunk"  # an offload frame too short, or with an impossible index
OFFLOAD_BAD_HEADER = "offload_bad_header"  # a vnet header that does not fit its packet
OFFLOAD_DUPLICATE = "offload_duplicate"  # a chunk seen before
OFFLOAD_MISMATCH = "offload_mismatch"  # a chunk that contradicts its packet's chunk count
OFFLOAD_INCOMPLETE = "offload_incomplete"  # a super-packet evicted before all its chunks came
OFFLOAD_TOO_BIG = "offload_too_big"  # a packet that needs more than MAX_CHUNKS chunks
OFFLOAD_UNAGREED = "offload_unagreed"  # a super-packet read while the peer takes none

# Byte-stream framing (framing/slip.py, framing/crc16.py) and the serial: link
SLIP_BAD_ESCAPE = "slip_bad_escape"  # ESC followed by anything but ESC_END or ESC_ESC
SLIP_OVERSIZE = "slip_oversize"  # a frame longer than the largest the decoder accepts
SLIP_GARBAGE = "slip_garbage"  # bytes before the first END, when the line was joined mid-frame
CRC = "crc"  # a frame whose CRC-16 trailer does not match (line noise)
UNPLUGGED = "unplugged"  # sent while the serial device was gone
WRITE_TIMEOUT = "write_timeout"  # the line took nothing for too long (flow control held it)

# KISS framing (framing/kiss.py) and the kiss: link's payload modes
KISS_BAD_ESCAPE = "kiss_bad_escape"  # FESC followed by anything but TFEND or TFESC
KISS_OVERSIZE = "kiss_oversize"  # a frame longer than the link's MTU allows
KISS_GARBAGE = "kiss_garbage"  # bytes before the first FEND, when the line was joined mid-frame
KISS_CRC = "kiss_crc"  # a SMACK or FlexNet frame whose CRC-16 does not match
KISS_OTHER_PORT = "kiss_other_port"  # a data frame for another TNC port
KISS_NOT_DATA = "kiss_not_data"  # a KISS command frame (TXDELAY...) where data was expected
AX25_MALFORMED = "ax25_malformed"  # too short or an address field without its end
AX25_NOT_UI = "ax25_not_ui"  # a connected-mode or other non-UI frame
AX25_NOT_FOR_US = "ax25_not_for_us"  # a UI frame to another station
AX25_OTHER_PID = "ax25_other_pid"  # a UI frame of another protocol (beacons, APRS text)
ARP_ANSWERED = "arp_answered"  # an ARP request consumed by the link (answered, not delivered)
ARP_IGNORED = "arp_ignored"  # an ARP packet not for the link's addresses, or a reply
ETHERNET_OTHER = "ethernet_other"  # an Ethernet frame of another type or to another station

# The sim: link's impairment model, counted as SIM followed by the model's reason: MTU,
# QUEUE_FULL (its own bounded queue) or LOSS (sim_mtu, sim_queue_full, sim_loss)
SIM = "sim_"  # the prefix of the family
LOSS = "loss"  # lost by the loss model

# The encrypt layer (wire/secure.py), counted on the link side
AUTH = "auth"  # transport data that does not authenticate (forged, corrupted, wrong keys)
REPLAY = "replay"  # transport data whose counter was seen before or is behind the window
UNKNOWN_KEY = "unknown_key"  # transport data for a session this side does not have (restart)
NOT_ENCRYPTED = "not_encrypted"  # a frame of another type (plain IP) while encryption is on
NO_SESSION = "no_session"  # a packet pushed out of the queue that waits for a handshake
HANDSHAKE_MALFORMED = "handshake_malformed"  # a handshake message of the wrong size
HANDSHAKE_MAC = "handshake_mac"  # a handshake message not made for this side's public key
HANDSHAKE_RATE = "handshake_rate"  # a handshake message over the rate limit (a flood)
HANDSHAKE_AUTH = "handshake_auth"  # a handshake message that does not authenticate
HANDSHAKE_PEER = "handshake_peer"  # an initiation from a key other than the configured peer's
HANDSHAKE_REPLAY = "handshake_replay"  # an initiation no newer than one accepted before
HANDSHAKE_UNEXPECTED = "handshake_unexpected"  # a response to no initiation of ours
HANDSHAKE_CIPHER = "handshake_cipher"  # a handshake whose peer allows no cipher this side does

# Header compression (wire/compress/): a frame the decompressor could not turn back into the
# packet that was sent; nothing it rebuilds wrongly reaches the tunnel
COMPRESS_BAD_CHECKSUM = "compress_bad_checksum"  # a rebuilt packet failed its checksum check
COMPRESS_NO_CONTEXT = "compress_no_context"  # compressed against a context this end lacks
COMPRESS_STALE = "compress_stale"  # compressed against an older context (a late frame)
COMPRESS_TOSSED = "compress_tossed"  # VJ: after an error, until a frame names its connection
COMPRESS_TRUNCATED = "compress_truncated"  # a frame that ends inside its compressed header
COMPRESS_BAD_FRAME = "compress_bad_frame"  # a field no compressor writes (slot, option length)
