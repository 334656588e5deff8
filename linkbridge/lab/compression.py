"""The lab report's header compression lines, from the two tunnels' status sockets."""

from __future__ import annotations

from collections.abc import Sequence

from linkbridge.ops.status import collect_status
from linkbridge.ops.status_data import SideStatus
from linkbridge.wire.drops import COMPRESS_BAD_CHECKSUM

FAILURE_PREFIX = COMPRESS_BAD_CHECKSUM.split("_")[0] + "_"  # compress_*


def compression_lines(pids: Sequence[int]) -> list[str]:
    """Per direction (A -> B for the first pid's sending side): packets compressed, header
    bytes saved, link bytes per IP byte, and the receiver's decompression failures."""
    tunnels = {tunnel.pid: tunnel for tunnel in collect_status()}
    sides = [tunnels[pid].link_side for pid in pids if pid in tunnels]
    if len(sides) != 2 or any(side.compression is None for side in sides):
        return []
    lines = []
    for label, sender, receiver in (("A -> B", sides[0], sides[1]),
                                    ("B -> A", sides[1], sides[0])):
        lines.append(f"  compress {label}: {direction_text(sender, receiver)}")
    return lines


def direction_text(sender: SideStatus, receiver: SideStatus) -> str:
    """`sender`'s compression figures (it has a compress layer) and `receiver`'s failures."""
    assert sender.compression is not None
    tx = sender.compression.tx
    frames = sender.below.tx_bytes if sender.below is not None else 0
    packets = sender.tx_bytes
    ratio = f"{frames / packets:.2f}" if packets else "-"
    failures = {reason: count for reason, count in receiver.drops.items()
                if reason.startswith(FAILURE_PREFIX)}
    failed = " ".join(f"{reason}={count}" for reason, count in sorted(failures.items())) or "none"
    return (f"{sender.compression.mode}, {tx.compressed} of {tx.packets} packets compressed, "
            f"{tx.saved} header bytes saved, link/IP bytes {ratio}; failures at the receiver: "
            f"{failed}")
