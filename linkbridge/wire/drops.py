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

# Byte-stream framing (framing/slip.py, framing/crc16.py) and the serial: link
SLIP_BAD_ESCAPE = "slip_bad_escape"  # ESC followed by anything but ESC_END or ESC_ESC
SLIP_OVERSIZE = "slip_oversize"  # a frame longer than the largest the decoder accepts
SLIP_GARBAGE = "slip_garbage"  # bytes before the first END, when the line was joined mid-frame
CRC = "crc"  # a frame whose CRC-16 trailer does not match (line noise)
UNPLUGGED = "unplugged"  # sent while the serial device was gone
WRITE_TIMEOUT = "write_timeout"  # the line took nothing for too long (flow control held it)

# The sim: link's impairment model, counted as SIM followed by the model's reason: MTU,
# QUEUE_FULL (its own bounded queue) or LOSS (sim_mtu, sim_queue_full, sim_loss)
SIM = "sim_"  # the prefix of the family
LOSS = "loss"  # lost by the loss model
