"""The offload layer's pure logic: virtio_net_hdr, offload chunks and the peers' hello. No I/O.

A TUN device opened with IFF_VNET_HDR puts a 10-byte `virtio_net_hdr` before every packet; with
offloads asked of the kernel (TUNSETOFFLOAD) a read may return a TCP (or UDP) super-packet of up
to 64 KB whose header says how to segment it (GSO) and where its checksum goes. Such a packet
crosses the link as offload chunks, frames of type 0x1 in wire.frames, no larger than the link's
frame size, and is written whole on the other side, header and all. The wire format is in
docs/offload.md.

- VnetHeader: the header, parsed from and built in the device's byte order (the host's, as
  a TUN device without TUNSETVNETLE/BE keeps it) and in network byte order inside a chunk.
- chunk_runs() / ChunkReassembler: a packet and its header into chunks (as iovecs for UDP GSO
  sends) and back; chunk_frames(): the same chunks, one bytes object each.
- hello_frame() / parse_hello(): what each side tells the other before it sends chunks: an
  IPv4 packet from 0.0.0.0 that a plain peer's kernel discards as a martian (a non-IP frame
  would make a TUN write fail, which ends a socat relay).
- complete_checksum(): a packet with a partial checksum made whole, for a peer without offload.
"""

from __future__ import annotations

import functools
import operator
import struct
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from linkbridge.wire.drops import (
    OFFLOAD_BAD_CHUNK,
    OFFLOAD_BAD_HEADER,
    OFFLOAD_DUPLICATE,
    OFFLOAD_MISMATCH,
)
from linkbridge.wire.frames import IPV4, OFFLOAD_CHUNK, frame_byte
from linkbridge.wire.packet import drop_reason, packet_problem
from linkbridge.wire.segments import MAX_SEGMENTS, MAX_UDP_PAYLOAD

VNET_HDR_LEN = 10
# virtio_net_hdr.flags
NEEDS_CSUM = 1
DATA_VALID = 2
# virtio_net_hdr.gso_type
GSO_NONE = 0
GSO_TCPV4 = 1
GSO_UDP = 3  # UFO: never asked for, refused on arrival
GSO_TCPV6 = 4
GSO_UDP_L4 = 5
GSO_ECN = 0x80
KNOWN_GSO = frozenset({GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4})
# TUNSETOFFLOAD flags
TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04
TUN_F_TSO_ECN = 0x08
TUN_F_USO4 = 0x20
TUN_F_USO6 = 0x40
TCP_OFFLOADS = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6
ALL_OFFLOADS = TCP_OFFLOADS | TUN_F_USO4 | TUN_F_USO6
# What to ask of the kernel, in turn, until one is accepted: USO needs Linux >= 6.2.
OFFLOAD_ATTEMPTS = (ALL_OFFLOADS, TCP_OFFLOADS)

# The low nibble of an offload frame's first byte: 0 for a chunk, the rest kept free.
CHUNK_FIRST_BYTE = frame_byte(OFFLOAD_CHUNK)
CHUNK_HEADER = 5  # type, packet id (2), index, count
FIRST_CHUNK_HEADER = CHUNK_HEADER + VNET_HDR_LEN  # the first chunk also carries the vnet header
MAX_CHUNKS = 255
MIN_FRAME_SIZE = 576  # below this, offload is not worth its headers (and 255 chunks fall short)
MAX_SUPER_PACKET = 65535
ID_SPACE = 1 << 16
HELLO_VERSION = 1
HELLO_MAGIC = b"LBOF"
HELLO_LENGTH = 28  # IPv4 header, magic, version, capabilities, reply, a zero byte
EXPERIMENT_PROTOCOL = 253  # RFC 3692: for experimentation
# Hello capability bits: the segmentations this side's kernel takes in a write (and makes).
CAN_TSO4 = 0x01
CAN_TSO6 = 0x02
CAN_USO = 0x04
UDP_CSUM_OFFSET = 6  # where a UDP header keeps its checksum
PENDING_PACKETS = 16  # partial super-packets kept at once; the oldest goes when one more starts

_DEVICE = struct.Struct("=BBHHHH")  # a TUN device's vnet header is in host byte order
_NETWORK = struct.Struct("!BBHHHH")
_CHUNK = struct.Struct("!BHBB")


@dataclass(frozen=True)
class VnetHeader:
    """struct virtio_net_hdr: checksum and segmentation instructions for one packet."""

    flags: int = 0
    gso_type: int = GSO_NONE
    hdr_len: int = 0
    gso_size: int = 0
    csum_start: int = 0
    csum_offset: int = 0

    @classmethod
    def from_device(cls, data: bytes) -> VnetHeader:
        """The header at the start of a TUN read (the device's byte order)."""
        return cls(*device_fields(data))

    @classmethod
    def from_network(cls, data: bytes, offset: int = 0) -> VnetHeader:
        return cls(*_NETWORK.unpack_from(data, offset))

    def device_bytes(self) -> bytes:
        return _DEVICE.pack(self.flags, self.gso_type, self.hdr_len, self.gso_size,
                            self.csum_start, self.csum_offset)

    def network_bytes(self) -> bytes:
        return _NETWORK.pack(self.flags, self.gso_type, self.hdr_len, self.gso_size,
                             self.csum_start, self.csum_offset)

    @property
    def plain(self) -> bool:
        """Nothing left to do: a whole packet with its checksum complete."""
        return not self.flags & NEEDS_CSUM and self.gso_type == GSO_NONE

    @property
    def segmented(self) -> bool:
        return self.gso_type & ~GSO_ECN != GSO_NONE

    def problem(self, packet_length: int) -> str | None:
        """Why this header cannot go with a packet of `packet_length` bytes, or None."""
        if self.gso_type & ~GSO_ECN not in KNOWN_GSO:
            return OFFLOAD_BAD_HEADER
        if self.flags & NEEDS_CSUM and self.csum_start + self.csum_offset + 2 > packet_length:
            return OFFLOAD_BAD_HEADER
        if self.segmented and (self.gso_size == 0 or self.hdr_len > packet_length):
            return OFFLOAD_BAD_HEADER
        return None


def device_fields(data: bytes) -> tuple[int, int, int, int, int, int]:
    """The fields of the header at the start of a TUN read, as VnetHeader orders them, without
    making one (the per-packet path reads them so)."""
    return _DEVICE.unpack_from(data)


_TYPES = bytes((CHUNK_FIRST_BYTE,)) * MAX_CHUNKS
_INDEXES = bytes(range(MAX_CHUNKS))
PLAIN_HEADER = VnetHeader()
PLAIN_DEVICE_BYTES = PLAIN_HEADER.device_bytes()


def chunk_payloads(frame_size: int) -> tuple[int, int]:
    """Payload bytes of the first chunk and of every other one, in frames of `frame_size`."""
    return frame_size - FIRST_CHUNK_HEADER, frame_size - CHUNK_HEADER


def max_packet(frame_size: int) -> int:
    """The longest packet MAX_CHUNKS chunks of `frame_size` carry (at most MAX_SUPER_PACKET)."""
    first, rest = chunk_payloads(frame_size)
    return min(MAX_SUPER_PACKET, first + (MAX_CHUNKS - 1) * rest)


Buffer = bytes | memoryview
ChunkRun = tuple[list[Buffer], int, int]  # an iovec of chunks, how many, their bytes in all


def chunk_runs(header: VnetHeader, packet: bytes | memoryview, frame_size: int,
               packet_id: int, run_bytes: int = MAX_UDP_PAYLOAD) -> list[ChunkRun]:
    """`packet` with `header` as chunks of at most `frame_size` bytes, all of exactly that size
    but the last (so that one UDP GSO send takes a run of them), in runs of at most `run_bytes`
    bytes and MAX_SEGMENTS chunks. Each run is an iovec for one sendmsg(): every chunk's header
    then its piece of `packet`, a slice of it, not a copy. ValueError when the packet needs
    more than MAX_CHUNKS or the frame size is below MIN_FRAME_SIZE."""
    if frame_size < MIN_FRAME_SIZE:
        raise ValueError(f"offload chunks need frames of at least {MIN_FRAME_SIZE} bytes")
    first, rest = chunk_payloads(frame_size)
    length = len(packet)
    count = 1 + -(-max(0, length - first) // rest)
    if count > MAX_CHUNKS:
        raise ValueError(f"a {length}-byte packet needs {count} chunks, more than {MAX_CHUNKS}")
    packet_id %= ID_SPACE
    # every chunk's header side by side, each field written across all of them at once
    heads = bytearray(CHUNK_HEADER * count)
    heads[0::CHUNK_HEADER] = _TYPES[:count]
    heads[1::CHUNK_HEADER] = bytes((packet_id >> 8,)) * count
    heads[2::CHUNK_HEADER] = bytes((packet_id & 0xFF,)) * count
    heads[3::CHUNK_HEADER] = _INDEXES[:count]
    heads[4::CHUNK_HEADER] = bytes((count,)) * count
    pieces: list[Buffer] = [b""] * (2 * count)
    pieces[0] = bytes(heads[:CHUNK_HEADER]) + header.network_bytes()
    pieces[1] = memoryview(packet)[:first]
    if count > 1:
        pieces[2::2] = _slices(CHUNK_HEADER, CHUNK_HEADER, CHUNK_HEADER, count - 1)(
            memoryview(heads))
        pieces[3::2] = _slices(first, rest, rest, count - 1)(memoryview(packet))
    per_run = min(MAX_SEGMENTS, run_bytes // frame_size)
    total = length + CHUNK_HEADER * count + VNET_HDR_LEN
    return [(pieces[2 * start : 2 * (start + per_run)], min(per_run, count - start),
             min(per_run * frame_size, total - start * frame_size))
            for start in range(0, count, per_run)]


def chunk_frames(header: VnetHeader, packet: bytes | memoryview, frame_size: int,
                 packet_id: int) -> list[bytes]:
    """The chunks of chunk_runs() as frames, one bytes object each."""
    return [frame for run in chunk_runs(header, packet, frame_size, packet_id)
            for frame in run_frames(run)]


class ChunkLayout:
    """A buffer that a device read fills already laid out as chunks of `frame_size` bytes.

    A readv() of the device into `slots` puts the vnet header and the packet where chunk_runs()
    puts them (each slot is a chunk's place after its header), so that stamp() has only to
    write the chunk headers around them: each run of chunks is then one slice of the buffer, sent
    by one GSO sendmsg with one iovec, where chunk_runs() makes two slices per chunk. `slots`
    hold at least `read_size` bytes (a read of the device, header included)."""

    def __init__(self, frame_size: int, read_size: int) -> None:
        self.frame_size = frame_size
        self._first, self._rest = chunk_payloads(frame_size)
        count = 1 + -(-max(0, read_size - VNET_HDR_LEN - self._first) // self._rest)
        self._buffer = bytearray(count * frame_size)
        self._view = memoryview(self._buffer)
        self.slots = [self._view[CHUNK_HEADER:frame_size]] + [
            self._view[at + CHUNK_HEADER : at + frame_size]
            for at in range(frame_size, count * frame_size, frame_size)]

    def read(self, length: int) -> bytes:
        """What the readv() of `length` bytes read (as os.read would have returned it)."""
        first = self.slots[0]
        if length <= len(first):
            return bytes(first[:length])
        pieces, left = [first], length - len(first)
        for slot in self.slots[1:]:
            if left <= 0:
                break
            pieces.append(slot[:left])
            left -= len(slot)
        return b"".join(pieces)

    def header(self) -> tuple[int, int, int, int, int, int]:
        """device_fields() of what the last readv() read."""
        return _DEVICE.unpack_from(self._view, CHUNK_HEADER)

    def stamp(self, header: VnetHeader, length: int, packet_id: int,
              run_bytes: int = MAX_UDP_PAYLOAD) -> list[ChunkRun]:
        """chunk_runs() of the `length`-byte packet the last readv() read with `header`, each
        run one slice of the buffer (valid until the next readv()). ValueError as there."""
        frame_size, first, rest = self.frame_size, self._first, self._rest
        count = 1 + -(-max(0, length - first) // rest)
        if count > MAX_CHUNKS:
            raise ValueError(f"a {length}-byte packet needs {count} chunks, more than {MAX_CHUNKS}")
        packet_id %= ID_SPACE
        buffer, end = self._buffer, count * frame_size
        buffer[0:end:frame_size] = _TYPES[:count]
        buffer[1:end:frame_size] = bytes((packet_id >> 8,)) * count
        buffer[2:end:frame_size] = bytes((packet_id & 0xFF,)) * count
        buffer[3:end:frame_size] = _INDEXES[:count]
        buffer[4:end:frame_size] = bytes((count,)) * count
        buffer[CHUNK_HEADER:FIRST_CHUNK_HEADER] = header.network_bytes()
        per_run = min(MAX_SEGMENTS, run_bytes // frame_size)
        total = length + CHUNK_HEADER * count + VNET_HDR_LEN
        return [([self._view[start * frame_size : min((start + per_run) * frame_size, total)]],
                 min(per_run, count - start), min(per_run * frame_size, total - start * frame_size))
                for start in range(0, count, per_run)]


def run_frames(run: ChunkRun) -> list[bytes]:
    """The chunks of one run of chunk_runs() as frames, one bytes object each."""
    pieces = run[0]
    return [b"".join(pieces[index : index + 2]) for index in range(0, len(pieces), 2)]


def single_run_packet(frame_size: int) -> int:
    """The longest packet whose chunks of `frame_size` bytes one GSO send carries (and one GRO
    read returns): the super-packet size that costs one system call on each side."""
    first, rest = chunk_payloads(frame_size)
    return first + (min(MAX_SEGMENTS, MAX_UDP_PAYLOAD // frame_size) - 1) * rest


def whole_run(frames: Sequence[bytes]) -> Delivered | str | None:
    """The packet of `frames` when they are exactly its chunks in order (what a GRO read of the
    peer's GSO send holds): rebuilt without a reassembler's bookkeeping, checked as feed() checks
    it. None when they are anything else: feed them to a ChunkReassembler one by one."""
    first = frames[0]
    count = len(frames)
    if len(first) < FIRST_CHUNK_HEADER or count > MAX_CHUNKS:
        return None
    heads = b"".join([frame[:CHUNK_HEADER] for frame in frames])
    if len(heads) != count * CHUNK_HEADER or not _one_packet(heads, CHUNK_HEADER, count):
        return None
    return _complete(VnetHeader.from_network(first, CHUNK_HEADER),
                     b"".join([first[FIRST_CHUNK_HEADER:],
                               *[memoryview(frame)[CHUNK_HEADER:] for frame in frames[1:]]]))


def coalesced_packet(data: bytes, segment: int) -> Delivered | str | None:
    """whole_run() for one GRO read, `data` holding datagrams of `segment` bytes back to back
    (the last may be shorter), without cutting it into frames first. None when the datagrams
    are not exactly one packet's chunks in order."""
    length = len(data)
    count = -(-length // segment) if segment > 0 else 0
    if not 1 < count <= MAX_CHUNKS or segment < FIRST_CHUNK_HEADER \
            or length - (count - 1) * segment < CHUNK_HEADER \
            or not _one_packet(data, segment, count):
        return None
    view = memoryview(data)
    rest = _slices(segment + CHUNK_HEADER, segment, segment - CHUNK_HEADER, count - 1)(view)
    return _complete(VnetHeader.from_network(data, CHUNK_HEADER),
                     b"".join((view[FIRST_CHUNK_HEADER:segment], *rest)))


@functools.lru_cache(maxsize=256)  # a few sizes in use at a time
def _slices(start: int, step: int, size: int, count: int
            ) -> Callable[[memoryview], tuple[memoryview, ...]]:
    """What takes `count` slices of `size` bytes, `step` bytes apart from `start`, out of a
    buffer in one call, without a Python loop (a packet's pieces, a GRO read's payloads)."""
    getter = operator.itemgetter(*[slice(at, at + size)
                                   for at in range(start, start + step * count, step)])
    if count == 1:
        return lambda view: (getter(view),)
    return getter


def _one_packet(data: bytes, stride: int, count: int) -> bool:
    """Whether the `count` chunk headers every `stride` bytes of `data` are one packet's chunks
    in order: each field is read across all of them at once."""
    return data[0::stride] == _TYPES[:count] and data[3::stride] == _INDEXES[:count] \
        and data[4::stride] == bytes((count,)) * count \
        and data[1::stride] == data[1:2] * count and data[2::stride] == data[2:3] * count


Delivered = tuple[VnetHeader, bytes]


class ChunkReassembler:
    """Offload chunks back into (header, packet), in any order, with drops counted by reason.

    feed() returns the packet a chunk completes, None while it is incomplete, or a drop reason
    (a string) for the chunk or the packet it completes. At most `pending` packets are
    collected at once: a chunk of one more evicts the oldest, which is then reported by
    `evicted` (a count the caller adds to its drops as OFFLOAD_INCOMPLETE).
    """

    def __init__(self, pending: int = PENDING_PACKETS) -> None:
        self._pending = pending
        self._partial: OrderedDict[int, _Partial] = OrderedDict()
        self.evicted = 0

    def feed(self, frame: bytes) -> Delivered | str | None:
        if len(frame) < CHUNK_HEADER or frame[0] != CHUNK_FIRST_BYTE:
            return OFFLOAD_BAD_CHUNK
        _kind, packet_id, index, count = _CHUNK.unpack_from(frame)
        if count == 0 or index >= count or (index == 0 and len(frame) < FIRST_CHUNK_HEADER):
            return OFFLOAD_BAD_CHUNK
        if count == 1:
            return _complete(VnetHeader.from_network(frame, CHUNK_HEADER),
                             frame[FIRST_CHUNK_HEADER:])
        partial = self._partial.get(packet_id)
        if partial is None:
            if len(self._partial) >= self._pending:
                self._partial.popitem(last=False)
                self.evicted += 1
            partial = self._partial[packet_id] = _Partial(count)
        elif partial.count != count:
            del self._partial[packet_id]
            return OFFLOAD_MISMATCH
        if partial.pieces[index] is not None:
            return OFFLOAD_DUPLICATE
        if index == 0:
            partial.header = VnetHeader.from_network(frame, CHUNK_HEADER)
            partial.pieces[0] = frame[FIRST_CHUNK_HEADER:]
        else:
            partial.pieces[index] = frame[CHUNK_HEADER:]
        partial.missing -= 1
        if partial.missing:
            return None
        del self._partial[packet_id]
        assert partial.header is not None
        return _complete(partial.header, b"".join(partial.pieces))  # type: ignore[arg-type]

    def take_evicted(self) -> int:
        """The partial packets evicted since the last call."""
        evicted, self.evicted = self.evicted, 0
        return evicted


class _Partial:
    __slots__ = ("count", "header", "missing", "pieces")

    def __init__(self, count: int) -> None:
        self.count = count
        self.missing = count
        self.header: VnetHeader | None = None
        self.pieces: list[bytes | None] = [None] * count


def _complete(header: VnetHeader, packet: bytes) -> Delivered | str:
    problem = header.problem(len(packet))
    if problem is not None:
        return problem
    ip_problem = packet_problem(packet)
    if ip_problem is not None:
        return drop_reason(ip_problem)
    return header, packet


def capabilities(tun_flags: int) -> int:
    """The hello capability bits of a device whose kernel accepted `tun_flags`."""
    caps = 0
    if tun_flags & TUN_F_CSUM:
        caps |= CAN_TSO4 if tun_flags & TUN_F_TSO4 else 0
        caps |= CAN_TSO6 if tun_flags & TUN_F_TSO6 else 0
        caps |= CAN_USO if tun_flags & TUN_F_USO4 and tun_flags & TUN_F_USO6 else 0
    return caps


def agreed_flags(tun_flags: int, peer_caps: int) -> int:
    """The offloads to turn on for a device whose kernel accepted `tun_flags`, sending to a peer
    that declared `peer_caps`: only segmentations the peer's kernel takes in a write."""
    if not tun_flags & TUN_F_CSUM:
        return 0
    shared = capabilities(tun_flags) & peer_caps
    return (TUN_F_CSUM | (TUN_F_TSO4 if shared & CAN_TSO4 else 0)
            | (TUN_F_TSO6 if shared & CAN_TSO6 else 0)
            | (TUN_F_USO4 | TUN_F_USO6 if shared & CAN_USO else 0))


_NAMES = {"csum": TUN_F_CSUM, "tso4": TUN_F_TSO4, "tso6": TUN_F_TSO6, "tso_ecn": TUN_F_TSO_ECN,
          "uso4": TUN_F_USO4, "uso6": TUN_F_USO6}


def offload_attempts(text: str) -> tuple[int, ...]:
    """What to ask of the kernel, in turn, for `--offload-flags` (names as flag_names() gives
    them, or numbers such as 0x8000; empty: OFFLOAD_ATTEMPTS): the set given, then without USO.
    ValueError names a word that is neither."""
    if not text.strip():
        return OFFLOAD_ATTEMPTS
    asked = 0
    for word in text.replace(" ", "").split(","):
        if word in _NAMES:
            asked |= _NAMES[word]
            continue
        try:
            asked |= int(word, 0)
        except ValueError:
            raise ValueError(f"unknown offload {word!r}; choose from {', '.join(_NAMES)} "
                             "or a number") from None
    without_uso = asked & ~(TUN_F_USO4 | TUN_F_USO6)
    return (asked,) if without_uso == asked else (asked, without_uso)


def flag_names(tun_flags: int) -> str:
    """`tun_flags` as text: "csum,tso4,tso6" ("off" for none)."""
    names = [name for name, bit in _NAMES.items() if tun_flags & bit]
    unknown = tun_flags & ~sum(_NAMES.values())
    return ",".join(names + ([hex(unknown)] if unknown else [])) or "off"


def _hello_prefix() -> bytes:
    """The IPv4 header and magic every hello starts with: 0.0.0.0 to 0.0.0.1, protocol 253,
    TTL 1, don't fragment; the checksum is filled in."""
    header = struct.pack("!BBHHHBBH4s4s", frame_byte(IPV4, 5), 0, HELLO_LENGTH, 0, 0x4000, 1,
                         EXPERIMENT_PROTOCOL, 0, bytes(4), bytes((0, 0, 0, 1)))
    checksum = ~ones_complement_sum(header) & 0xFFFF
    return header[:10] + checksum.to_bytes(2, "big") + header[12:] + HELLO_MAGIC


def hello_frame(caps: int, reply: bool) -> bytes:
    """The frame that tells the peer this side takes offload chunks, and which segmentations
    its kernel takes; `reply` answers the peer's hello (and is not answered)."""
    return HELLO_PREFIX + bytes((HELLO_VERSION, caps & 0xFF, int(reply), 0))


def parse_hello(frame: bytes) -> tuple[int, bool] | None:
    """(capabilities, reply) of a hello; None when it is not one this version reads."""
    if len(frame) != HELLO_LENGTH or not frame.startswith(HELLO_PREFIX) \
            or frame[24] != HELLO_VERSION:
        return None
    return frame[25], bool(frame[26])


def ones_complement_sum(data: bytes) -> int:
    """The 16-bit ones'-complement sum of `data` (RFC 1071), zero-padded to an even length.

    2**16 is 1 modulo 0xFFFF, so the sum of the big-endian words equals the whole buffer read as
    one integer modulo 0xFFFF: one pass in C instead of a Python loop over the words.
    """
    if len(data) % 2:
        data += b"\0"
    value = int.from_bytes(data, "big")
    total = value % 0xFFFF
    return 0xFFFF if total == 0 and value else total


def complete_checksum(packet: bytes, csum_start: int, csum_offset: int) -> bytes:
    """`packet` with the checksum a header with NEEDS_CSUM leaves to the device filled in: the
    field (`csum_offset` bytes after `csum_start`) holds the pseudo-header sum, the sum runs
    from csum_start to the end."""
    field = csum_start + csum_offset
    checksum = ~ones_complement_sum(packet[csum_start:]) & 0xFFFF
    if checksum == 0 and csum_offset == UDP_CSUM_OFFSET:
        checksum = 0xFFFF  # in UDP, 0 means "no checksum"
    return packet[:field] + checksum.to_bytes(2, "big") + packet[field + 2:]


HELLO_PREFIX = _hello_prefix()
