"""The lab report's lines on the tunnels' layers, from their status sockets: header compression
per direction, encryption and TUN offloads per side, and the drops that the report's loss rows
set apart from the link's (the receiver's decompression drops, the sender's full queues)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from linkbridge.ops.status import collect_status
from linkbridge.ops.status_data import SideStatus, TunnelStatus
from linkbridge.ops.status_format import drops_text, encryption_text, repair_text
from linkbridge.wire.drops import (
    COMPRESS_BAD_CHECKSUM,
    QUEUE_ACK_FILTERED,
    QUEUE_FULL,
    QUEUE_OVERFLOW,
    QUEUE_RETRANSMIT,
)
from linkbridge.wire.offload import flag_names

FAILURE_PREFIX = COMPRESS_BAD_CHECKSUM.split("_")[0] + "_"  # compress_*
Pair = tuple[TunnelStatus, TunnelStatus]


def tunnel_pair(pids: Sequence[int]) -> Pair | None:
    """The status of tunnel A (the first pid's) and tunnel B, or None when one does not answer."""
    tunnels = {tunnel.pid: tunnel for tunnel in collect_status()}
    found = [tunnels[pid] for pid in pids if pid in tunnels]
    return (found[0], found[1]) if len(found) == 2 else None


def decompression_drops(receiver: SideStatus) -> dict[str, int]:
    """Frames `receiver` got over the link and its decompressor dropped, by reason."""
    return {reason: count for reason, count in receiver.drops.items()
            if reason.startswith(FAILURE_PREFIX)}


LINK_QUEUE = (QUEUE_RETRANSMIT, QUEUE_ACK_FILTERED, QUEUE_OVERFLOW)  # the link-aware queue's


def queue_drops(sender: SideStatus) -> dict[str, int]:
    """Packets `sender`'s stack dropped from a queue before the link, by reason: for want of
    room (`queue_full`, or a link's own `..._queue_full`, e.g. a sim: link's `limit`) or by
    the link-aware queue's rules (docs/queue.md); they never went out."""
    return {reason: count for side in sender.stack() for reason, count in side.drops.items()
            if count and (reason in LINK_QUEUE or reason == QUEUE_FULL
                          or reason.endswith("_" + QUEUE_FULL))}


def layer_lines(pair: Pair) -> list[str]:
    """The compression lines per direction, then encryption, offload and repair per side."""
    return (compression_lines(pair) + encryption_lines(pair) + offload_lines(pair)
            + repair_lines(pair))


def compression_lines(pair: Pair) -> list[str]:
    """Per direction: packets compressed, header bytes saved, link bytes per IP byte, and the
    receiver's decompression failures."""
    a, b = pair[0].link_side, pair[1].link_side
    if a.compression is None or b.compression is None:
        return []
    return [f"  compress {label}: {direction_text(sender, receiver)}"
            for label, sender, receiver in (("A -> B", a, b), ("B -> A", b, a))]


def direction_text(sender: SideStatus, receiver: SideStatus) -> str:
    """`sender`'s compression figures (it has a compress layer) and `receiver`'s failures."""
    assert sender.compression is not None
    tx = sender.compression.tx
    frames = sender.below.tx_bytes if sender.below is not None else 0
    packets = sender.tx_bytes
    ratio = f"{frames / packets:.2f}" if packets else "-"
    failures = decompression_drops(receiver)
    failed = drops_text(dict(sorted(failures.items()))) or "none"
    return (f"{sender.compression.mode}, {tx.compressed} of {tx.packets} packets compressed, "
            f"{tx.saved} header bytes saved, link/IP bytes {ratio}; failures at the receiver: "
            f"{failed}")


def encryption_lines(pair: Pair) -> list[str]:
    """Per side with encryption: its session, cipher and handshakes, and the layer's drops."""
    now = time.time()
    return [f"  encrypt  {label}: {encryption_text(layer.encryption, layer.drops, now)}"
            for label, tunnel in zip("AB", pair, strict=True)
            for layer in tunnel.link_side.stack() if layer.encryption is not None]


def repair_lines(pair: Pair) -> list[str]:
    """Per side with loss repair (`--repair`): what it repaired, and the loss it measures."""
    return [f"  repair   {label}: {repair_text(layer.repair)}"
            for label, tunnel in zip("AB", pair, strict=True)
            for layer in tunnel.link_side.stack() if layer.repair is not None]


def offload_lines(pair: Pair) -> list[str]:
    """Per side with TUN offloads: what is on, super-packets and the chunks they crossed as."""
    return [f"  offload  {label}: {offload_text(tunnel.tunnel.offload)}"
            for label, tunnel in zip("AB", pair, strict=True)
            if "kernel_flags" in tunnel.tunnel.offload]


def offload_text(figures: Mapping[str, int]) -> str:
    get = figures.get
    on = (f"on ({flag_names(get('enabled_flags', 0))})" if get("enabled_flags")
          else "off (the peer did not agree, or the kernel takes none)")
    return (f"{on}, {get('super_packets_read', 0)} super-packets read and sent as "
            f"{get('chunks_sent', 0)} chunks, {get('super_packets_written', 0)} written from "
            f"{get('chunks_received', 0)} chunks received")
