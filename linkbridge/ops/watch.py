"""`linkbridge status --watch`: live packet and byte rates per tunnel side and direction.

Rates come from two status snapshots of the same tunnel (same device and pid), divided by the
difference of their `uptime_s`, which the tunnel measured itself when it answered. On a terminal
the table is redrawn in place; into a pipe each refresh appends one line per tunnel side.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from linkbridge.ops.status_data import SideStatus, TunnelStatus
from linkbridge.ops.status_format import NO_TUNNELS, human_bytes

CLEAR = "\x1b[H\x1b[2J"  # cursor home, erase the screen


@dataclass(frozen=True)
class SideRate:
    """What one side of one tunnel moved per second between two snapshots (None: unknown)."""

    device: str
    pid: int
    side: str
    rx_pps: float | None
    rx_bps: float | None  # bytes per second
    tx_pps: float | None
    tx_bps: float | None


def _key(tunnel: TunnelStatus) -> tuple[str, int]:
    return tunnel.device, tunnel.pid


def rates(previous: Sequence[TunnelStatus], current: Sequence[TunnelStatus]) -> list[SideRate]:
    """The rates of every tunnel in `current`; None where `previous` lacks it (just started)."""
    before = {_key(tunnel): tunnel for tunnel in previous}
    found = []
    for tunnel in current:
        old = before.get(_key(tunnel))
        elapsed = tunnel.uptime_s - old.uptime_s if old is not None else 0.0
        then_sides = dict(old.sides()) if old is not None else {}
        for side, now in tunnel.sides():
            then = then_sides.get(side, SideStatus())
            found.append(SideRate(
                *_key(tunnel), side,
                *(_per_second(now_count, then_count, elapsed) for now_count, then_count in (
                    (now.rx_packets, then.rx_packets), (now.rx_bytes, then.rx_bytes),
                    (now.tx_packets, then.tx_packets), (now.tx_bytes, then.tx_bytes)))))
    return found


def _per_second(now: int, then: int, elapsed: float) -> float | None:
    """How fast a counter grew from `then` to `now`; None without an interval, 0 after a
    reset."""
    if elapsed <= 0:
        return None
    return max(0, now - then) / elapsed


def _pps(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}/s"


def _bps(value: float | None) -> str:
    return "-" if value is None else f"{human_bytes(round(value))}/s"


HEADER = ("DEVICE", "PID", "SIDE", "RX PKT/S", "RX BYTES/S", "TX PKT/S", "TX BYTES/S")


def rate_table(found: Sequence[SideRate]) -> str:
    """The table shown on a terminal, one row per tunnel side."""
    if not found:
        return NO_TUNNELS
    rows = [HEADER] + [(r.device, str(r.pid), r.side, _pps(r.rx_pps), _bps(r.rx_bps),
                        _pps(r.tx_pps), _bps(r.tx_bps)) for r in found]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                     for row in rows)


def rate_lines(found: Sequence[SideRate], stamp: str) -> list[str]:
    """What one refresh appends to a pipe: a line per tunnel side, numbers without units."""
    def number(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    return [f"{stamp} {r.device} {r.pid} {r.side} rx_pps={number(r.rx_pps)} "
            f"rx_bytes_per_s={number(r.rx_bps)} tx_pps={number(r.tx_pps)} "
            f"tx_bytes_per_s={number(r.tx_bps)}" for r in found]


def watch(collect: Callable[[], Sequence[TunnelStatus]], out: TextIO, interval: float,
          count: int | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
    """Show rates every `interval` seconds, `count` times (None: until interrupted)."""
    terminal = out.isatty()
    previous = collect()
    shown = 0
    while count is None or shown < count:
        sleep(interval)
        current = collect()
        found = rates(previous, current)
        stamp = time.strftime("%H:%M:%S")
        if terminal:
            out.write(f"{CLEAR}linkbridge status --watch  every {interval:g} s  {stamp}  "
                      f"(Ctrl-C to stop)\n\n{rate_table(found)}\n")
        else:
            lines = rate_lines(found, stamp) or [f"{stamp} {NO_TUNNELS}"]
            out.write("\n".join(lines) + "\n")
        out.flush()
        previous = current
        shown += 1
