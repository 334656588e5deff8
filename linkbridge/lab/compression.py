"""The lab report's header compression lines, from the two tunnels' status sockets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from linkbridge.ops.status import collect
from linkbridge.wire.drops import COMPRESS_BAD_CHECKSUM

FAILURE_PREFIX = COMPRESS_BAD_CHECKSUM.split("_")[0] + "_"  # compress_*


def compression_lines(pids: Sequence[int]) -> list[str]:
    """Per direction (A -> B for the first pid's sending side): packets compressed, header
    bytes saved, link bytes per IP byte, and the receiver's decompression failures."""
    documents = {int(doc.get("pid", 0)): doc for doc in collect()}
    sides = [documents.get(pid, {}).get("link_side", {}) for pid in pids]
    if len(sides) != 2 or not all(isinstance(side.get("compress"), dict) for side in sides):
        return []
    lines = []
    for label, sender, receiver in (("A -> B", sides[0], sides[1]),
                                    ("B -> A", sides[1], sides[0])):
        lines.append(f"  compress {label}: {direction_text(sender, receiver)}")
    return lines


def direction_text(sender: dict[str, Any], receiver: dict[str, Any]) -> str:
    tx = sender["compress"].get("tx", {})
    frames = sender.get("frames", {}).get("tx_bytes", 0)
    packets = sender.get("tx_bytes", 0)
    ratio = f"{frames / packets:.2f}" if packets else "-"
    failures = {reason: count for reason, count in receiver.get("drops", {}).items()
                if reason.startswith(FAILURE_PREFIX)}
    failed = " ".join(f"{reason}={count}" for reason, count in sorted(failures.items())) or "none"
    return (f"{sender['compress'].get('mode', '?')}, {tx.get('compressed', 0)} of "
            f"{tx.get('packets', 0)} packets compressed, {tx.get('saved', 0)} header bytes "
            f"saved, link/IP bytes {ratio}; failures at the receiver: {failed}")
