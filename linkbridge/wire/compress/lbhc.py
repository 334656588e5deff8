"""linkbridge header compression, the `auto` mode: IPv4/IPv6, TCP (any options), UDP, echo.

Wire format (docs/compression.md), the context id `cid` (0-15) in the low nibble:

- `0xD0|cid gen <the packet without its length field>`: a full header (IR). It sets up context
  `cid` at generation `gen` and is exactly as long as the packet.
- `0xC0|cid gen mask <fields> <masked checksum> <payload>`: compressed against that context's
  reference header: each field is absent (as in the reference) or a varint delta from it, so
  every frame decodes on its own and a lost one costs only itself.
- `0xA0|cid<<3|psh<<2|id <masked checksum> <payload>`: sequential, 3 bytes of header for an
  IPv4 TCP segment of context `cid` (0-1) that follows the ones before it: `psh` its PSH flag,
  `id` its IP ID's two low bits, which tell the decompressor how many segments on from the
  last one it rebuilt (of that context) this one is; the sequence number moves by that many
  times the payload length, the IP ID by that many, every other field is the last one's. The
  compressor sends one only when each of its last WINDOW frames of the context would give the
  same packet as that reference.
- `0x50|cid<<3|psh<<2|id <ack> <masked checksum> <payload>`: the same for a segment whose ACK
  number moved: `ack` is its low byte, read as the first value at or after the last one's.
- `0xE0|cid gen`: feedback, from a decompressor to the peer's compressor: "no usable context
  `cid` at generation `gen` here; send a full header". It is how a lost IR is repaired within
  one round trip. `0xE0|cid` alone (after a sequential frame that failed): whatever the
  generation.

The transport checksum travels XORed with a hash of the rebuilt IP header, so the check that
the decompressor runs over the rebuilt packet also covers the IP fields the checksum does not
(TTL, TOS, IP ID, flow label). A frame is never longer than its packet. Pure: time is passed in.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable

from linkbridge.wire.compress.headers import (
    CHECKSUM_AT,
    ICMP,
    TCP,
    TCP_FIELDS,
    UDP,
    Headers,
    pack_timestamps,
    parse,
)
from linkbridge.wire.compress.sums import (
    VARINT_MAX,
    checksum,
    pseudo_sum,
    read_varint,
    transport_valid,
    varint,
)
from linkbridge.wire.drops import (
    COMPRESS_BAD_CHECKSUM,
    COMPRESS_BAD_FRAME,
    COMPRESS_NO_CONTEXT,
    COMPRESS_STALE,
    COMPRESS_TRUNCATED,
)
from linkbridge.wire.frames import (
    COMPRESSED,
    COMPRESSED_SEQUENTIAL,
    COMPRESSED_SEQUENTIAL_ACK,
    CONTEXT_REFRESH,
    IPV4,
    IPV6,
    UNCOMPRESSED,
    frame_byte,
    low_nibble,
    type_nibble,
)

CONTEXTS = 16
IR = frame_byte(UNCOMPRESSED)
CO = frame_byte(COMPRESSED)
FEEDBACK = frame_byte(CONTEXT_REFRESH)
SEQUENTIAL = frame_byte(COMPRESSED_SEQUENTIAL)
SEQUENTIAL_ACK = frame_byte(COMPRESSED_SEQUENTIAL_ACK)  # the same, the ACK's low byte after it
ACK_REACH = 0xFF  # how far past the last packet's ACK number the low byte reads
# mask bits, sent in this order: IP ID, seq (TCP; echo sequence), ack, window, flags,
# timestamps, options literal, urgent pointer
M_ID, M_SEQ, M_ACK, M_WIN, M_FLAGS, M_TS, M_OPTIONS, M_URGENT = (
    0x80, 0x40, 0x20, 0x10, 0x08, 0x04, 0x02, 0x01)
M32 = 0xFFFFFFFF
LONG_DELTA = 0x4000  # a delta this large takes 3 varint bytes: time to move the reference
REBASE_AFTER = 32  # ...once this many frames used the current one
FEEDBACK_REPEAT = 0.5  # seconds before the same feedback goes out again
HASH_PRIME = 65521  # the IP header hash: any one changed 16-bit word changes it
# Sequential frames: the low nibble is a context bit (contexts 0-1), TCP's PSH flag and the IP
# ID's 2 low bits, so a reference 1-4 segments back.
SEQUENTIAL_CIDS = 2
S_PUSH = 0x04
PSH = 0x08  # in TCP's flags
WINDOW = 4  # the compressor's frames any one of which the decompressor may hold as the last
# The readings of those bits the decompressor tries: 1-4 segments on from its last packet,
# then a late frame (up to 4 back: reordered within the window), then 4 more lost.
TRIES = (0, -WINDOW, WINDOW)
LATE = WINDOW  # a packet up to this many IP IDs behind the decompressor's last is a late one
# Payload bytes of a sequential frame. A reading off by k segments (0 < |k| <= 8) along the
# flow's line moves the sequence number by k strides, less 1 when it wraps (2**32 = 1 mod
# 65535): 1..32760, never 0 mod 65535, so the TCP checksum always sees it. Below MIN_STRIDE
# (a pure ACK) the readings differ in the IP ID alone: the mask covers the ID then, and the
# decompressor tries the first reading only.
MIN_STRIDE, MAX_STRIDE = 2, 4095
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
Drop = Callable[[str], None]


def header_hash(ip_header: bytes | bytearray) -> int:
    """A 16-bit hash of an IP header that sees a change in any one of its 16-bit words."""
    return int.from_bytes(ip_header, "big") % HASH_PRIME


def line_hash(ip_header: bytes | bytearray, tcp_header: bytes | bytearray, stride: int) -> int:
    """A sequential frame's mask: header_hash() of what a reading must not change: the IPv4
    header but its ID and checksum, the TCP header but its sequence number and checksum, and
    the flow's line, sequence number less `stride` times the IP ID (mod 2**32). Each reading
    along the line gets the same mask, so a wrong one shows in the TCP checksum alone (see
    MIN_STRIDE); a reading from a packet off the line (a resend, another ACK between) gets
    another mask, which passes the check as rarely as a random 16-bit value. Below MIN_STRIDE
    the line is the sequence number and the IP ID themselves."""
    seq, ip_id = _U32.unpack_from(tcp_header, 4)[0], _U16.unpack_from(ip_header, 4)[0]
    line = (seq - stride * ip_id) & M32 if stride >= MIN_STRIDE else seq << 16 | ip_id
    return header_hash(bytes(ip_header[:4]) + bytes(ip_header[6:10]) + bytes(ip_header[12:20])
                       + bytes(tcp_header[:4]) + line.to_bytes(6, "big")
                       + bytes(tcp_header[8:16]) + bytes(tcp_header[18:]))


class _Context:
    """A compressor's flow: its cid, the generation and the reference the peer holds."""

    __slots__ = ("cid", "gen", "recent", "ref", "refresh", "uses")

    def __init__(self, cid: int) -> None:
        self.cid = cid
        self.gen = 0
        self.ref: Headers | None = None
        self.uses = 0
        self.refresh = True
        self.recent: deque[Headers] = deque(maxlen=WINDOW)  # the last frames' headers


class Compressor:
    """Turns packets into frames: compressed, full header, or the packet itself.

    `first_gen` seeds the generation numbers (random at start-up, so a restarted compressor does
    not reuse the numbers the peer still holds).
    """

    def __init__(self, first_gen: int = 0, contexts: int = CONTEXTS) -> None:
        self._flows: dict[bytes, _Context] = {}  # least recently used first
        self._by_cid: list[_Context | None] = [None] * contexts
        self._gens = [first_gen & 0xFF] * contexts

    def feedback(self, frame: bytes) -> None:
        """The peer lacks a context: its next packet goes as a full header."""
        cid = low_nibble(frame[0]) if frame else len(self._by_cid)
        if cid >= len(self._by_cid):
            return
        context = self._by_cid[cid]
        if context is not None and (len(frame) == 1 or context.gen == frame[1]):
            context.refresh = True

    def refresh_all(self) -> None:
        """Send every flow's next packet with a full header (the frames went another way)."""
        for context in self._flows.values():
            context.refresh = True

    def compress(self, packet: bytes) -> bytes:
        """The frame for `packet`; never longer than it."""
        headers = parse(packet)
        if headers is None:
            return packet
        context = self._flows.pop(headers.key, None)
        if context is None:
            context = self._new_context()
        self._flows[headers.key] = context
        if not context.refresh and context.ref is not None:
            frame = _sequential(context, headers, packet)
            if frame is None and (frame := _encode(context, headers, packet)) is not None:
                context.uses += 1  # frames that code against the reference
            if frame is not None and len(frame) < len(packet):
                context.recent.append(headers)
                return frame
        return self._full(context, headers, packet)

    def _new_context(self) -> _Context:
        cid = next((cid for cid, used in enumerate(self._by_cid) if used is None), None)
        if cid is None:
            cid = self._flows.pop(next(iter(self._flows))).cid  # the least recently used
        context = self._by_cid[cid] = _Context(cid)
        return context

    def _full(self, context: _Context, headers: Headers, packet: bytes) -> bytes:
        gen = self._gens[context.cid] = (self._gens[context.cid] + 1) & 0xFF
        context.gen, context.ref, context.uses, context.refresh = gen, headers, 0, False
        context.recent.clear()
        context.recent.append(headers)
        length_at = 2 if headers.version == IPV4 else 4
        return bytes((IR | context.cid, gen)) + packet[:length_at] + packet[length_at + 2:]


def _delta(value: int, reference: int, modulo: int) -> int:
    return (value - reference) & modulo


def _sequential(context: _Context, headers: Headers, packet: bytes) -> bytes | None:
    """The 3-byte-header frame (4 with the ACK's low byte), when every frame the decompressor
    may hold as its last one of the context (the last WINDOW sent) rebuilds `packet` from it;
    else None."""
    recent, ref = context.recent, context.ref
    if (len(recent) < WINDOW or context.cid >= SEQUENTIAL_CIDS or headers.proto != TCP
            or headers.version != IPV4 or headers.options != recent[-1].options
            or ref is None or headers.static != ref.static):
        return None  # the options first: with timestamps they change in every segment
    stride = len(packet) - headers.ihl - headers.thlen
    if stride > MAX_STRIDE:
        return None
    moved = False
    for last in recent:  # all of this generation: cleared by each full header
        steps = (headers.ip_id - last.ip_id) & 0xFFFF
        acked = (headers.ack - last.ack) & M32
        if (not 0 < steps <= WINDOW or (headers.seq - last.seq) & M32 != steps * stride & M32
                or acked > ACK_REACH or headers.window != last.window
                or (headers.flags ^ last.flags) & ~PSH or headers.urgent != last.urgent
                or headers.options != last.options):
            return None
        moved = moved or acked > 0
    low = context.cid << 3 | (S_PUSH if headers.flags & PSH else 0) | headers.ip_id % WINDOW
    head = (bytes((SEQUENTIAL_ACK | low, headers.ack & 0xFF)) if moved
            else bytes((SEQUENTIAL | low,)))
    field = headers.csum ^ line_hash(packet, packet[20:20 + headers.thlen], stride)
    return head + _U16.pack(field) + packet[20 + headers.thlen:]


def _encode(context: _Context, headers: Headers, packet: bytes) -> bytes | None:
    """The compressed frame, or None when the packet needs a full header."""
    ref = context.ref
    assert ref is not None
    if headers.static != ref.static:
        return None
    mask, fields, longest = 0, b"", 0
    if headers.ip_id != ref.ip_id:
        delta = _delta(headers.ip_id, ref.ip_id, 0xFFFF)
        mask, fields, longest = M_ID, varint(delta), delta
    proto = headers.proto
    if proto == TCP:
        if delta := (headers.seq - ref.seq) & M32:
            if delta > VARINT_MAX:
                return None
            mask |= M_SEQ
            fields += varint(delta)
            longest = max(longest, delta)
        if delta := (headers.ack - ref.ack) & M32:
            if delta > VARINT_MAX:
                return None
            mask |= M_ACK
            fields += varint(delta)
            longest = max(longest, delta)
        if headers.window != ref.window:
            mask |= M_WIN
            fields += _U16.pack(headers.window)
        if headers.flags != ref.flags:
            mask |= M_FLAGS
            fields += bytes((headers.flags,))
        options, at = headers.options, headers.ts_at
        if options != ref.options:
            if (at >= 0 and at == ref.ts_at and len(options) == len(ref.options)
                    and options[:at] == ref.options[:at]
                    and options[at + 8:] == ref.options[at + 8:]):
                tsval = _delta(headers.tsval, ref.tsval, M32)
                tsecr = _delta(headers.tsecr, ref.tsecr, M32)
                if max(tsval, tsecr) > VARINT_MAX:
                    return None
                mask |= M_TS
                fields += varint(tsval) + varint(tsecr)
                longest = max(longest, tsval, tsecr)
            else:
                mask |= M_OPTIONS
                fields += bytes((len(options),)) + options
        if headers.urgent != ref.urgent:
            mask |= M_URGENT
            fields += _U16.pack(headers.urgent)
    elif proto != UDP and headers.seq != ref.seq:  # an echo's sequence number
        delta = _delta(headers.seq, ref.seq, 0xFFFF)
        mask |= M_SEQ
        fields += varint(delta)
        longest = max(longest, delta)
    if longest >= LONG_DELTA and context.uses >= REBASE_AFTER:
        return None
    ihl = headers.ihl
    masked = headers.csum ^ header_hash(packet[:ihl])
    return (bytes((CO | context.cid, context.gen, mask)) + fields + _U16.pack(masked)
            + packet[ihl + headers.thlen:])


class _Reference:
    """A decompressor's context: the generation and the reference packet's headers, and for
    IPv4 TCP the headers of the last packet rebuilt in it (`last`: what sequential frames
    count from; None when they may not)."""

    __slots__ = ("gen", "headers", "ip_header", "last", "last_id", "transport")

    def __init__(self, gen: int, headers: Headers, packet: bytes) -> None:
        self.gen, self.headers = gen, headers
        self.ip_header = packet[:headers.ihl]
        self.transport = packet[headers.ihl:headers.ihl + headers.thlen]
        self.last: bytes | None = None
        self.last_id = headers.ip_id
        if headers.version == IPV4 and headers.proto == TCP:
            self.last = packet[:headers.ihl + headers.thlen]

    def remember(self, packet: bytes) -> None:
        """`packet` was rebuilt in this context: the new `last`, unless its IP ID is a little
        behind the last one's (a late frame; a jump of the ID is a new last)."""
        ip_id = packet[4] << 8 | packet[5]
        if self.last is not None and not 0 <= (self.last_id - ip_id) & 0xFFFF <= LATE:
            self.last, self.last_id = packet[:20 + (packet[32] >> 4) * 4], ip_id


class Decompressor:
    """Rebuilds packets from frames; frames of types it does not own pass through unchanged.

    Every rebuilt packet is checked (transport checksum, unmasked by the rebuilt IP header's
    hash) and dropped, counted, when it fails. A compressed frame for a generation it does not
    hold queues a feedback frame (take_feedback()), at most once per FEEDBACK_REPEAT for the
    same one.
    """

    def __init__(self, drop: Drop, contexts: int = CONTEXTS,
                 feedback_repeat: float = FEEDBACK_REPEAT) -> None:
        self._drop = drop
        self._refs: list[_Reference | None] = [None] * contexts
        self._asked: list[tuple[int | None, float] | None] = [None] * contexts
        self._repeat = feedback_repeat
        self._feedback: list[bytes] = []

    @staticmethod
    def is_feedback(frame: bytes) -> bool:
        """Whether `frame` is feedback for this end's compressor."""
        return bool(frame) and type_nibble(frame[0]) == CONTEXT_REFRESH

    def take_feedback(self) -> list[bytes]:
        """The feedback frames to send to the peer since the last call."""
        frames, self._feedback = self._feedback, []
        return frames

    def frame_lost(self) -> None:
        """Nothing to do: a compressed frame names its context and generation and decodes
        against that reference alone, a sequential one against whichever of the compressor's
        last 4 frames arrived last, so a lost frame costs only itself."""

    def feed(self, frame: bytes, now: float) -> bytes | None:
        """The packet `frame` carries, or None (counted) when it cannot be rebuilt."""
        if not frame:
            return frame
        kind = type_nibble(frame[0])
        if kind == COMPRESSED:
            return self._compressed(frame, now)
        if kind == UNCOMPRESSED:
            return self._full(frame)
        if kind in (COMPRESSED_SEQUENTIAL, COMPRESSED_SEQUENTIAL_ACK):
            return self._sequential(frame, now)
        return frame

    def _full(self, frame: bytes) -> bytes | None:
        if len(frame) < 28:
            self._drop(COMPRESS_TRUNCATED)
            return None
        version = type_nibble(frame[2])  # of the packet whose header follows
        if version == IPV4:
            packet = frame[2:4] + _U16.pack(len(frame)) + frame[4:]
        elif version == IPV6 and len(frame) >= 48:
            packet = frame[2:6] + _U16.pack(len(frame) - 40) + frame[6:]
        else:
            self._drop(COMPRESS_BAD_FRAME)
            return None
        headers = parse(packet)
        if headers is None:
            self._drop(COMPRESS_BAD_CHECKSUM)
            return None
        cid = low_nibble(frame[0])
        if cid < len(self._refs):
            self._refs[cid] = _Reference(frame[1], headers, packet)
        return packet

    def _compressed(self, frame: bytes, now: float) -> bytes | None:
        if len(frame) < 5:  # type, generation, mask, checksum
            self._drop(COMPRESS_TRUNCATED)
            return None
        cid, gen = low_nibble(frame[0]), frame[1]
        ref = self._refs[cid] if cid < len(self._refs) else None
        if ref is None or ref.gen != gen:
            # feedback either way: a compressor ignores it for a generation it has left behind
            # (a late frame), and needs it when it restarted and its full header was lost
            stale = ref is not None and 0 < (ref.gen - gen) & 0xFF < 128
            self._drop(COMPRESS_STALE if stale else COMPRESS_NO_CONTEXT)
            self._ask(cid, gen, now)
            if ref is not None:  # its sequential frames may be the other generation's now
                ref.last = None
            return None
        try:
            packet = _rebuild(ref, frame)
        except (IndexError, struct.error):
            self._drop(COMPRESS_TRUNCATED)
            return None
        except ValueError:
            self._drop(COMPRESS_BAD_FRAME)
            return None
        if packet is None:
            self._drop(COMPRESS_BAD_CHECKSUM)
            self._ask(cid, gen, now)
        else:
            ref.remember(packet)
        return packet

    def _sequential(self, frame: bytes, now: float) -> bytes | None:
        if len(frame) < (4 if type_nibble(frame[0]) == COMPRESSED_SEQUENTIAL_ACK else 3):
            self._drop(COMPRESS_TRUNCATED)  # type, (ACK,) checksum
            return None
        cid = low_nibble(frame[0]) >> 3
        ref = self._refs[cid]
        if ref is None or ref.last is None:
            self._drop(COMPRESS_NO_CONTEXT)
            self._ask(cid, None, now)
            return None
        packet = _rebuild_sequential(ref.last, frame)
        if packet is None:
            self._drop(COMPRESS_BAD_CHECKSUM)
            self._ask(cid, None, now)
        else:
            ref.remember(packet)
        return packet

    def _ask(self, cid: int, gen: int | None, now: float) -> None:
        """Queue feedback for context `cid` at `gen` (None: whatever its generation)."""
        if cid >= len(self._asked):
            return
        asked = self._asked[cid]
        if asked is None or asked[0] != gen or now - asked[1] >= self._repeat:
            self._asked[cid] = (gen, now)
            self._feedback.append(bytes((FEEDBACK | cid,) if gen is None
                                        else (FEEDBACK | cid, gen)))


def _rebuild(ref: _Reference, frame: bytes) -> bytes | None:
    """The packet a compressed frame carries; None when it fails its check. IndexError for a
    frame that ends too soon, ValueError for a field no compressor writes."""
    base = ref.headers
    mask, offset = frame[2], 3
    ihl, proto = base.ihl, base.proto
    ip_header = bytearray(ref.ip_header)
    if mask & M_ID:
        if base.version != IPV4:
            raise ValueError("IP ID in IPv6")
        delta, offset = read_varint(frame, offset)
        ip_header[4:6] = _U16.pack((base.ip_id + delta) & 0xFFFF)
    if proto == TCP:
        seq, ack, flags, window = base.seq, base.ack, base.flags, base.window
        urgent, options = base.urgent, base.options
        if mask & M_SEQ:
            delta, offset = read_varint(frame, offset)
            seq += delta
        if mask & M_ACK:
            delta, offset = read_varint(frame, offset)
            ack += delta
        if mask & M_WIN:
            window = _U16.unpack_from(frame, offset)[0]
            offset += 2
        if mask & M_FLAGS:
            flags = frame[offset]
            offset += 1
        if mask & M_TS:
            if base.ts_at < 0:
                raise ValueError("timestamps without a timestamp option")
            tsval, offset = read_varint(frame, offset)
            tsecr, offset = read_varint(frame, offset)
            options = pack_timestamps(options, base.ts_at, base.tsval + tsval, base.tsecr + tsecr)
        if mask & M_OPTIONS:
            size = frame[offset]
            options = frame[offset + 1:offset + 1 + size]
            offset += 1 + size
            if size % 4 or size > 40 or len(options) != size:
                raise ValueError("options length")
        if mask & M_URGENT:
            urgent = _U16.unpack_from(frame, offset)[0]
            offset += 2
        transport = bytearray(ref.transport[:4] + TCP_FIELDS.pack(
            seq & M32, ack & M32, (20 + len(options)) << 2 | ref.transport[12] & 0x0F, flags,
            window, 0, urgent) + options)
    else:
        if mask & ~(M_ID | M_SEQ) or (proto == UDP and mask & M_SEQ):
            raise ValueError("mask bits")
        transport = bytearray(ref.transport)
        if mask & M_SEQ:
            delta, offset = read_varint(frame, offset)
            transport[6:8] = _U16.pack((base.seq + delta) & 0xFFFF)
    masked = _U16.unpack_from(frame, offset)[0]
    payload = frame[offset + 2:]
    length = len(transport) + len(payload)
    if base.version == IPV4:
        ip_header[2:4] = _U16.pack(ihl + length)
        ip_header[10:12] = b"\0\0"
        ip_header[10:12] = _U16.pack(checksum(ip_header))
    else:
        ip_header[4:6] = _U16.pack(length)
    if proto == UDP:
        transport[4:6] = _U16.pack(length)
    at = CHECKSUM_AT[proto]
    transport[at:at + 2] = _U16.pack(masked ^ header_hash(ip_header))
    segment = bytes(transport) + payload
    addresses = bytes(ip_header[12:20] if base.version == IPV4 else ip_header[8:40])
    pseudo = 0 if proto == ICMP else pseudo_sum(addresses, proto, length)
    if not transport_valid(pseudo, segment):
        return None
    return bytes(ip_header) + segment


def _rebuild_sequential(last: bytes, frame: bytes) -> bytes | None:
    """The packet a sequential frame carries, rebuilt from the IPv4 and TCP headers `last` of
    the last packet of its context; None when no reading of its IP ID bits passes the check.
    The first reading (1-4 segments on) is the one the compressor made sure of; the others
    (further on, or a late frame) can only pass when right, as line_hash() says."""
    at = 2 if type_nibble(frame[0]) == COMPRESSED_SEQUENTIAL_ACK else 1
    payload = frame[at + 2:]
    stride, size = len(payload), len(last) + len(payload)
    if stride > MAX_STRIDE:
        return None
    last_id, last_seq = _U16.unpack_from(last, 4)[0], _U32.unpack_from(last, 24)[0]
    first = (low_nibble(frame[0]) - last_id) % WINDOW or WINDOW
    ip_header = bytearray(last[:20])
    ip_header[2:4] = _U16.pack(size)
    tcp = bytearray(last[20:])
    tcp[13] = tcp[13] & ~PSH | (PSH if frame[0] & S_PUSH else 0)
    if at == 2:
        last_ack = _U32.unpack_from(last, 28)[0]
        tcp[8:12] = _U32.pack((last_ack + ((frame[1] - last_ack) & ACK_REACH)) & M32)
    field = _U16.unpack_from(frame, at)[0]
    pseudo = pseudo_sum(bytes(ip_header[12:20]), TCP, size - 20)
    for more in TRIES if stride >= MIN_STRIDE else TRIES[:1]:
        steps = first + more
        ip_header[4:6] = _U16.pack((last_id + steps) & 0xFFFF)
        tcp[4:8] = _U32.pack((last_seq + steps * stride) & M32)
        tcp[16:18] = _U16.pack(field ^ line_hash(ip_header, tcp, stride))
        if transport_valid(pseudo, bytes(tcp) + payload):
            ip_header[10:12] = b"\0\0"
            ip_header[10:12] = _U16.pack(checksum(ip_header))
            return bytes(ip_header) + bytes(tcp) + payload
    return None
