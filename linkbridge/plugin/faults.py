"""What the conformance suite saw, put in words: corrupted packets, the pattern of lost ones,
and the one line of what it measured. Pure: fed the packets sent and received, no I/O.

The sustained-traffic packets are numbered: a 4-byte big-endian index, then random bytes.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from linkbridge.plugin.units import format_rate

INDEX_BYTES = 4
SHOWN = 3  # packet numbers quoted in a message
REGULAR = 0.9  # share of the gaps between lost packets that makes a pattern "every Nth"


def numbered(index: int, body: bytes) -> bytes:
    """Packet number `index`: its index, then `body`."""
    return index.to_bytes(INDEX_BYTES, "big") + body


def index_of(packet: bytes, sent: Sequence[bytes]) -> int | None:
    """The index of `packet` in `sent` when it arrived exactly as sent, else None."""
    index = int.from_bytes(packet[:INDEX_BYTES], "big")
    return index if index < len(sent) and sent[index] == packet else None


def ordinal(number: int) -> str:
    """1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, 21st."""
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(
        number % 10, "th")
    return f"{number}{suffix}"


def corruption(sent: Sequence[bytes], got: Iterable[bytes]) -> tuple[int, str]:
    """How many packets of `got` arrived changed, and what changed in the first of them."""
    changed = [packet for packet in got if index_of(packet, sent) is None]
    if not changed:
        return 0, ""
    first = changed[0]
    index = int.from_bytes(first[:INDEX_BYTES], "big")
    if index >= len(sent):
        return len(changed), f"a packet of {len(first)} bytes with no packet number sent"
    original = sent[index]
    if len(first) != len(original):
        return len(changed), f"packet {index}: {len(first)} bytes instead of {len(original)}"
    offsets = [at for at, (x, y) in enumerate(zip(first, original, strict=True)) if x != y]
    return len(changed), (f"packet {index}: {len(offsets)} of {len(original)} bytes changed, "
                          f"the first at offset {offsets[0]}")


def _runs(indices: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted indices as (first, last) runs of consecutive numbers."""
    runs: list[tuple[int, int]] = []
    for index in indices:
        if runs and index == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], index)
        else:
            runs.append((index, index))
    return runs


def describe_loss(lost: Iterable[int], total: int) -> str:
    """The lost packet numbers as a pattern: "every 7th packet lost (286 of 2000: packets 6,
    13, 20, ...)", "packets 100-227 lost (128 in a row)", or the count and the first runs."""
    indices = sorted(set(lost))
    if not indices:
        return ""
    count = f"{len(indices)} of {total}"
    gaps = Counter(b - a for a, b in itertools.pairwise(indices))
    if len(indices) >= SHOWN and gaps:
        gap, times = gaps.most_common(1)[0]
        if gap > 1 and times >= REGULAR * (len(indices) - 1):
            shown = ", ".join(map(str, indices[:SHOWN]))
            return f"every {ordinal(gap)} packet lost ({count}: packets {shown}, ...)"
    runs = _runs(indices)
    shown = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs[:SHOWN])
    more = ", ..." if len(runs) > SHOWN else ""
    if len(runs) == 1 and len(indices) > 1:
        return f"packets {shown} lost ({len(indices)} in a row, of {total})"
    return f"{count} lost (packets {shown}{more})"


@dataclass(frozen=True)
class Measured:
    """One direction of sustained traffic as the suite measured it."""

    name: str
    sent: int
    delivered: int
    delivered_bytes: int
    seconds: float  # from the first send to the last packet delivered


def summary_line(scheme: str, sizes: Sequence[int], directions: Sequence[Measured],
                 drops: Mapping[str, int], longest_send: float) -> str:
    """What the sustained-traffic test measured, in one line."""
    parts = []
    for one in directions:
        rate = format_rate(8 * one.delivered_bytes / one.seconds) if one.seconds > 0 else "-"
        parts.append(f"{one.name} {one.delivered}/{one.sent} delivered in {one.seconds:.2f} s "
                     f"({rate})")
    counted = ", ".join(f"{reason} {count}" for reason, count in sorted(drops.items()) if count)
    size = f"{min(sizes)}-{max(sizes)} bytes" if sizes else "no packets"
    return (f"{scheme}: {len(sizes)} packets of {size}: {', '.join(parts)}; drops: "
            f"{counted or 'none'}; longest send() {1000 * longest_send:.1f} ms")
