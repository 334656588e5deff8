"""Packet-level FEC (`--repair fec`): parity frames over groups of numbered frames, from zfec's
Reed-Solomon erasure code (MDS: any k of a group's k + r frames rebuild its k data frames), so
a lost frame is rebuilt without a round trip. Data frames go out as they come; a group closes
when it holds GROUP frames, has waited `group_wait` or has had no frame for `quiet`, and its
parity frames go to the repair layer (wire/repair.py paces them). The parity count follows
the loss the receiver reports (none at 0% loss). Pure: the caller passes the time.
docs/repair.md has the wire format.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import comb
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import zfec

from linkbridge.wire.arq import HALF, distance, seq_after

GROUP = 16  # data frames per group, at most
MAX_PARITY = GROUP  # parity frames per group, at most
TARGET = 0.0045  # the share of data frames a group may leave unrepaired on average
LENGTH = 2  # bytes: a block is the payload's length, the payload, then zeros
CACHE = 64  # data frames and parity groups the receiver keeps


def residual(k: int, r: int, loss: float) -> float:
    """The share of data frames that a group of `k` with `r` parity frames loses on average
    when each frame is lost independently with probability `loss`."""
    n = k + r
    return sum(comb(n, lost) * loss ** lost * (1 - loss) ** (n - lost) * lost / n
               for lost in range(r + 1, n + 1))


def redundancy(loss: float, k: int) -> int:
    """The fewest parity frames for `k` data frames that leave at most TARGET unrepaired (at
    most MAX_PARITY; none at no loss)."""
    if loss <= 0:
        return 0
    return next((r for r in range(MAX_PARITY + 1) if residual(k, r, loss) <= TARGET),
                MAX_PARITY)


def block(payload: bytes, size: int) -> bytes:
    """`payload` as a block of `size` bytes."""
    return len(payload).to_bytes(LENGTH, "big") + payload + bytes(size - LENGTH - len(payload))


def unblock(data: bytes) -> bytes | None:
    """The payload of a block; None when its length field does not fit."""
    size = int.from_bytes(data[:LENGTH], "big")
    return data[LENGTH:LENGTH + size] if LENGTH + size <= len(data) else None


@dataclass(frozen=True)
class Parity:
    """Parity frame `index` (k..m-1) of the group of `k` data frames from `first`."""

    first: int
    k: int
    m: int
    index: int
    data: bytes
    made_at: float = 0.0


class _Coders:
    """zfec encoders and decoders by (k, m), made once. zfec is imported on first use (it loads
    modules for its command-line tools; a plain tunnel's RSS was about 0.1 MB lower without
    it, measured with /proc/PID/status beside a running `linkbridge up`)."""

    def __init__(self) -> None:
        self._encoders: dict[tuple[int, int], zfec.Encoder] = {}
        self._decoders: dict[tuple[int, int], zfec.Decoder] = {}

    def encoder(self, k: int, m: int) -> zfec.Encoder:
        if (k, m) not in self._encoders:
            import zfec
            self._encoders[k, m] = zfec.Encoder(k, m)
        return self._encoders[k, m]

    def decoder(self, k: int, m: int) -> zfec.Decoder:
        if (k, m) not in self._decoders:
            import zfec
            self._decoders[k, m] = zfec.Decoder(k, m)
        return self._decoders[k, m]


class FecSender:
    """Groups the frames sent and makes each group's parity frames."""

    def __init__(self, group_wait: float) -> None:
        self.group_wait = group_wait
        self.quiet = group_wait / 4  # s without a frame: the traffic stopped
        self.parity = 0  # parity frames per full group, set from the receiver's loss report
        self._group: list[tuple[int, bytes]] = []
        self._opened = self._last = 0.0  # when the open group got its first and last frame
        self._coders = _Coders()

    def add(self, seq: int, payload: bytes, now: float) -> list[Parity]:
        """Frame `seq` was sent; the parity of the group it completes. A group holds
        consecutive frames only (the receiver numbers its blocks from the first): a frame that
        does not follow the open group's last (`auto` sent some without coding meanwhile)
        closes that group and opens the next."""
        # the parity of a group that frames filled in less than half its wait (bulk) is
        # made at the dawn of time: it goes out with the next tick, not held for idle
        # airtime as that of a slower group: a frame lost in it must not fall a receiver's
        # window (WINDOW) behind before it comes
        parity = []
        if self._group and seq != seq_after(self._group[-1][0], 1):
            parity = self.close(now)
        if not self._group:
            self._opened = now
        self._group.append((seq, payload))
        self._last = now
        if len(self._group) >= GROUP:
            bulk = now - self._opened < self.group_wait / 2
            parity += self.close(float("-inf") if bulk else now)
        return parity

    def first(self) -> list[int]:
        """The first frame of the open group (none when no group is open)."""
        return [self._group[0][0]] if self._group else []

    def withdraw(self, seq: int) -> bool:
        """Take frame `seq` back out of the open group; False when it is in none."""
        if self._group and self._group[-1][0] == seq:
            self._group.pop()
            return True
        return False

    def due(self, now: float) -> list[Parity]:
        """The parity of a group that waited `group_wait`, or `quiet` since its last frame
        (the traffic stopped: its frames' repair should not wait for more)."""
        deadline = self.deadline()
        if deadline is not None and deadline <= now:
            return self.close(now)
        return []

    def deadline(self) -> float | None:
        if not self._group:
            return None
        return min(self._opened + self.group_wait, self._last + self.quiet)

    def close(self, now: float = 0.0) -> list[Parity]:
        group, self._group = self._group, []
        k = len(group)
        r = -(-self.parity * k // GROUP) if self.parity else 0  # as many per frame as a full one
        if not group or not r:
            return []
        size = LENGTH + max(len(payload) for _, payload in group)
        m = k + r
        blocks = tuple(block(payload, size) for _, payload in group)
        made = self._coders.encoder(k, m).encode(blocks, tuple(range(k, m)))
        return [Parity(group[0][0], k, m, k + i, bytes(data), now)
                for i, data in enumerate(made)]


class FecReceiver:
    """Keeps the latest data frames and parity groups, and rebuilds the data frames a group's
    parity can; `missing(seq)` says which are still wanted. A group is forgotten once HALF
    frames came after its first block: its numbers come round again, and the blocks of an
    older group of the same numbers and size would rebuild garbage."""

    def __init__(self, missing: Callable[[int], bool]) -> None:
        self._missing = missing
        self._data: dict[int, bytes] = {}
        self._groups: dict[tuple[int, int, int], dict[int, bytes]] = {}
        self._born: dict[tuple[int, int, int], int] = {}  # frames seen when a group began
        self._seen = 0  # frames seen (data and parity)
        self._coders = _Coders()

    def _expire(self) -> None:
        self._seen += 1
        for key in [key for key, born in self._born.items() if self._seen - born > HALF]:
            self._forget(key)

    def _keep(self, seq: int, payload: bytes) -> None:
        """Keep frame `seq` (received or rebuilt), and the CACHE latest only: an older one
        of the same number would rebuild garbage."""
        self._data.pop(seq, None)
        self._data[seq] = payload
        while len(self._data) > CACHE:
            del self._data[next(iter(self._data))]

    def _forget(self, key: tuple[int, int, int]) -> None:
        self._groups.pop(key, None)
        self._born.pop(key, None)

    def data(self, seq: int, payload: bytes) -> list[tuple[int, bytes]]:
        """Frame `seq` came; the frames rebuilt with its help."""
        self._expire()
        self._keep(seq, payload)
        return [rebuilt for key in list(self._groups) if distance(seq, key[0]) < key[1]
                for rebuilt in self._decode(key)]

    def parity(self, parity: Parity) -> list[tuple[int, bytes]]:
        """A parity frame came; the frames rebuilt with its help."""
        self._expire()
        key = (parity.first, parity.k, parity.m)
        self._born.setdefault(key, self._seen)
        blocks = self._groups.setdefault(key, {})
        if any(len(data) != len(parity.data) for data in blocks.values()):
            return []  # not of this group's size: a frame of an older group of the same numbers
        blocks[parity.index] = parity.data
        if len(self._groups) > CACHE:
            self._forget(next(iter(self._groups)))
        return self._decode(key)

    def _decode(self, key: tuple[int, int, int]) -> list[tuple[int, bytes]]:
        first, k, m = key
        seqs = [seq_after(first, i) for i in range(k)]
        wanted = [i for i, seq in enumerate(seqs) if seq not in self._data and self._missing(seq)]
        parity = self._groups[key]
        size = len(next(iter(parity.values())))
        have = {i: block(self._data[seq], size) for i, seq in enumerate(seqs)
                if seq in self._data and LENGTH + len(self._data[seq]) <= size}
        if not wanted:  # complete, or a late frame of a group rebuilt or given up: useless
            self._forget(key)
            return []
        if len(have) + len(parity) < k:
            return []
        have.update(parity)
        nums = sorted(have)[:k]
        primary = self._coders.decoder(k, m).decode([have[i] for i in nums], nums)
        self._forget(key)
        rebuilt = []
        for i in wanted:
            payload = unblock(bytes(primary[i]))
            if payload is not None:
                self._keep(seqs[i], payload)
                rebuilt.append((seqs[i], payload))
        return rebuilt
