"""Link fragmentation: split packets into frames of a link's size and put them back. Pure logic.

Wire format (docs/fragmentation.md): a frame that starts with the nibble 0xF is a fragment with
a 4-byte big-endian header, `1111 | packet id (19 bits) | last (1 bit) | index (8 bits)`, followed
by a piece of the packet. Any other frame is a whole packet (IPv4 and IPv6 start with 4 or 6).
Time is passed in; nothing here reads a clock, sleeps or does I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from linkbridge.errors import ConfigError
from linkbridge.wire.drops import (
    FRAGMENT_BAD_HEADER,
    FRAGMENT_DUPLICATE,
    FRAGMENT_MISMATCH,
    FRAGMENT_TOO_BIG,
    REASSEMBLY_OVERFLOW,
    REASSEMBLY_OVERSIZE,
    REASSEMBLY_TIMEOUT,
)
from linkbridge.wire.frames import FRAGMENT, type_nibble

HEADER_SIZE = 4
MIN_FRAME_SIZE = HEADER_SIZE + 1  # the smallest link MTU fragments fit in
MARKER = FRAGMENT  # the first nibble of every fragment (wire/frames.py)
MAX_FRAGMENTS = 256
ID_BITS = 19
ID_SPACE = 1 << ID_BITS
MAX_PACKET = 65535
DEFAULT_TIMEOUT = 3.0  # seconds a partly received packet waits for its missing fragments
DEFAULT_MAX_PENDING = 64  # packets reassembled at the same time
MAX_REMEMBERED = 4096  # ids of delivered packets kept to recognise late duplicate fragments
Drop = Callable[[str], None]


@dataclass(frozen=True)
class FragmentHeader:
    """Which packet a fragment belongs to, its place in it, and whether it is the last one."""

    packet_id: int
    index: int
    last: bool

    def pack(self) -> bytes:
        word = MARKER << 28 | self.packet_id << 9 | int(self.last) << 8 | self.index
        return word.to_bytes(HEADER_SIZE, "big")


def is_fragment(frame: bytes) -> bool:
    """True when `frame` carries the fragment marker (rather than a whole packet)."""
    return bool(frame) and type_nibble(frame[0]) == MARKER


def parse_header(frame: bytes) -> FragmentHeader | None:
    """The header of a fragment frame, or None when it is too short to hold one and a piece."""
    if len(frame) <= HEADER_SIZE or not is_fragment(frame):
        return None
    word = int.from_bytes(frame[:HEADER_SIZE], "big")
    return FragmentHeader((word >> 9) & (ID_SPACE - 1), word & 0xFF, bool(word >> 8 & 1))


def max_packet_size(frame_size: int) -> int:
    """The largest packet that fits in MAX_FRAGMENTS frames of `frame_size` bytes."""
    return min(MAX_PACKET, (frame_size - HEADER_SIZE) * MAX_FRAGMENTS)


def check_frame_size(frame_size: int, packet_size: int) -> None:
    """Raise ConfigError unless packets of `packet_size` can be split into `frame_size` frames."""
    if frame_size < MIN_FRAME_SIZE:
        raise ConfigError(f"cannot fragment into {frame_size}-byte frames: a fragment needs "
                          f"{HEADER_SIZE} bytes of header and at least one of data")
    if packet_size > max_packet_size(frame_size):
        raise ConfigError(f"tunnel MTU {packet_size} needs more than {MAX_FRAGMENTS} fragments of "
                          f"{frame_size} bytes; the most is {max_packet_size(frame_size)}")


class Fragmenter:
    """Splits packets larger than `frame_size` into fragments; smaller ones pass whole.

    A whole packet that happens to start with the marker nibble is sent as one fragment so the
    receiver cannot mistake it. Packets needing more than MAX_FRAGMENTS frames are dropped
    (`fragment_too_big`).
    """

    def __init__(self, frame_size: int, drop: Drop, first_id: int = 0) -> None:
        check_frame_size(frame_size, 0)
        self.frame_size = frame_size
        self._drop = drop
        self._piece = frame_size - HEADER_SIZE
        self._next_id = first_id % ID_SPACE

    def split(self, packet: bytes) -> list[bytes]:
        if len(packet) <= self.frame_size and not is_fragment(packet):
            return [packet]
        count = max(1, -(-len(packet) // self._piece))
        if count > MAX_FRAGMENTS:
            self._drop(FRAGMENT_TOO_BIG)
            return []
        packet_id, self._next_id = self._next_id, (self._next_id + 1) % ID_SPACE
        view = memoryview(packet)
        return [
            FragmentHeader(packet_id, index, index == count - 1).pack()
            + bytes(view[index * self._piece : (index + 1) * self._piece])
            for index in range(count)
        ]


@dataclass
class _Partial:
    """Fragments received so far of one packet."""

    started: float
    pieces: dict[int, bytes] = field(default_factory=dict)
    size: int = 0
    count: int | None = None  # known once the last fragment arrived


class Reassembler:
    """Collects fragments into packets; whole-packet frames pass straight through.

    At most `max_pending` packets are in progress (a new one evicts the oldest:
    `reassembly_overflow`); one not complete `timeout` seconds after its first fragment is lost
    (`reassembly_timeout`). Fragments of a packet already delivered in the last `timeout`
    seconds, or repeated within one, are `fragment_duplicate`; a fragment contradicting the
    others' count is `fragment_mismatch`; an unreadable one `fragment_bad_header`. `now` is
    any clock in seconds that never goes backwards.
    """

    def __init__(self, drop: Drop, timeout: float = DEFAULT_TIMEOUT,
                 max_pending: int = DEFAULT_MAX_PENDING, max_size: int = MAX_PACKET) -> None:
        if timeout <= 0 or max_pending < 1:
            raise ConfigError("reassembly needs a positive timeout and at least one buffer slot")
        self._drop = drop
        self.timeout = timeout
        self.max_pending = max_pending
        self.max_size = max_size
        self._pending: dict[int, _Partial] = {}
        self._delivered: dict[int, float] = {}  # packet id -> when, oldest first

    @property
    def pending(self) -> int:
        """Packets waiting for fragments."""
        return len(self._pending)

    def feed(self, frame: bytes, now: float) -> bytes | None:
        """Take one frame from the link; return the packet it completes (or is), else None."""
        self.expire(now)
        if not is_fragment(frame):
            return frame
        header = parse_header(frame)
        if header is None:
            self._drop(FRAGMENT_BAD_HEADER)
            return None
        if header.packet_id in self._delivered:
            self._drop(FRAGMENT_DUPLICATE)
            return None
        partial = self._pending.get(header.packet_id)
        if partial is None:
            partial = self._start(header.packet_id, now)
        return self._add(header, frame[HEADER_SIZE:], partial, now)

    def expire(self, now: float) -> None:
        """Give up on packets whose fragments are overdue; forget old delivered ids.

        Both tables are in arrival order, so only their overdue heads are looked at.
        """
        while self._pending:
            packet_id, partial = next(iter(self._pending.items()))
            if now - partial.started < self.timeout:
                break
            del self._pending[packet_id]
            self._drop(REASSEMBLY_TIMEOUT)
        while self._delivered:
            packet_id, when = next(iter(self._delivered.items()))
            if now - when < self.timeout and len(self._delivered) <= MAX_REMEMBERED:
                break
            del self._delivered[packet_id]

    def _start(self, packet_id: int, now: float) -> _Partial:
        if len(self._pending) >= self.max_pending:
            del self._pending[next(iter(self._pending))]
            self._drop(REASSEMBLY_OVERFLOW)
        partial = self._pending[packet_id] = _Partial(now)
        return partial

    def _add(self, header: FragmentHeader, piece: bytes, partial: _Partial,
             now: float) -> bytes | None:
        count = header.index + 1 if header.last else partial.count
        if count is not None and (
            (partial.count is not None and count != partial.count)
            or max(partial.pieces, default=-1) >= count
            or (not header.last and header.index >= count)
        ):
            self._drop(FRAGMENT_MISMATCH)
            return None
        if header.index in partial.pieces:
            self._drop(FRAGMENT_DUPLICATE)
            return None
        if partial.size + len(piece) > self.max_size:
            del self._pending[header.packet_id]
            self._drop(REASSEMBLY_OVERSIZE)
            return None
        partial.count = count
        partial.pieces[header.index] = piece
        partial.size += len(piece)
        if len(partial.pieces) != partial.count:
            return None
        del self._pending[header.packet_id]
        self._delivered[header.packet_id] = now
        return b"".join(partial.pieces[index] for index in range(partial.count))
