"""`linkbridge status` for people and programs: the table (one row per tunnel side, then a line
per tunnel with compression or encryption) and the JSON. Pure: takes typed status data
(status_data.py) and the time to measure ages against."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence

from linkbridge.ops.reasons import legend_lines
from linkbridge.ops.status_data import (
    LINK_SIDE,
    PEER_SIDE,
    Encryption,
    Repair,
    SideStatus,
    TunnelStatus,
)
from linkbridge.wire.fec import GROUP

NO_TUNNELS = "no linkbridge tunnels running"
HEADER = ("DEVICE", "PID", "UP", "SIDE", "STATE", "RX PKTS", "RX BYTES", "TX PKTS", "TX BYTES",
          "DROPS")


def human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def human_duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def drops_text(drops: Mapping[str, int]) -> str:
    """Drops by reason as `reason=count ...` in the order served; empty without drops."""
    return " ".join(f"{reason}={count}" for reason, count in drops.items())


def format_json(tunnels: Sequence[TunnelStatus]) -> str:
    """`status --json`: the documents as the tunnels served them."""
    return json.dumps([tunnel.document for tunnel in tunnels], indent=2)


def format_table(tunnels: Sequence[TunnelStatus], now: float) -> str:
    """The `linkbridge status` table: per tunnel, one row per side, rx/tx and drops by reason;
    then the compression and encryption lines (`now`: Unix time, for the handshake's age)."""
    if not tunnels:
        return NO_TUNNELS
    rows: list[tuple[str, ...]] = [HEADER]
    for tunnel in tunnels:
        for index, (label, side) in enumerate(tunnel.sides()):
            first = index == 0
            state = tunnel.liveness.state if tunnel.liveness else "-"
            rows.append((
                tunnel.device if first else "",
                str(tunnel.pid) if first else "",
                human_duration(tunnel.uptime_s) if first else "",
                f"{label} {side.name}".strip(),
                state if label == LINK_SIDE else tunnel.link_states.get(label, ""),
                str(side.rx_packets),
                human_bytes(side.rx_bytes),
                str(side.tx_packets),
                human_bytes(side.tx_bytes),
                drops_text(side.drops) or "-",
            ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    return "\n".join(["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
                      .rstrip() for row in rows] + compression_lines(tunnels)
                     + encryption_lines(tunnels, now) + repair_lines(tunnels)
                     + legend_lines(tunnel.reasons for tunnel in tunnels))


def encryption_lines(tunnels: Sequence[TunnelStatus], now: float) -> list[str]:
    """One line per encrypted tunnel (per peer of a multipoint tunnel): handshake state, the
    latest handshake, the encrypt layer's drops (the layer is found under the link side, or
    the peer's, below any layer above it)."""
    lines = []
    for who, side in stacks(tunnels):
        for layer in side.stack():
            if layer.encryption is not None:
                lines.append(f"{who}: " + encryption_text(layer.encryption, layer.drops, now))
                break
    return lines


def stacks(tunnels: Sequence[TunnelStatus]) -> Iterator[tuple[str, SideStatus]]:
    """Each tunnel's link side, then each of its peers' stacks, named for the layer lines."""
    for tunnel in tunnels:
        yield tunnel.device, tunnel.link_side
        for name, peer in tunnel.peers:
            yield f"{tunnel.device} {PEER_SIDE}{name}", peer


def encryption_text(state: Encryption, drops: Mapping[str, int], now: float) -> str:
    last = state.last_handshake
    when = (f"last handshake {human_duration(max(0.0, now - last))} ago "
            f"({state.handshakes} so far)" if last else "no handshake yet")
    cipher = f" ({state.cipher})" if state.cipher else ""
    shown = drops_text(drops)
    return (f"encryption {state.state}{cipher}, {when}"
            + (f", drops {shown}" if shown else ""))


def repair_lines(tunnels: Sequence[TunnelStatus]) -> list[str]:
    """One line per tunnel with loss repair: what it repaired, and the loss it measures."""
    lines = []
    for who, side in stacks(tunnels):
        for layer in side.stack():
            if layer.repair is not None:
                lines.append(f"{who}: " + repair_text(layer.repair))
                break
    return lines


def repair_text(figures: Repair) -> str:
    counts = ", ".join(f"{getattr(figures, name)} {name}" for name in Repair.COUNTERS)
    return (f"repair {figures.mode}: {counts}; loss in {figures.loss:.1%}, out "
            f"{figures.peer_loss:.1%}; rto {figures.rto_ms} ms, parity {figures.parity}/{GROUP}")


def compression_lines(tunnels: Sequence[TunnelStatus]) -> list[str]:
    """One line per tunnel with header compression (per peer of a multipoint tunnel): its
    figures per direction."""
    lines = []
    for who, side in stacks(tunnels):
        figures = side.compression
        if figures is None:
            continue
        parts = [f"{way} {one.compressed}/{one.packets} compressed, "
                 f"{human_bytes(one.saved)} of headers saved"
                 for way, one in (("tx", figures.tx), ("rx", figures.rx))]
        lines.append(f"{who}: compress {figures.mode}: " + "; ".join(parts))
    return lines
