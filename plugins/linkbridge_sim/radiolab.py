"""The lab's simulated medium: started in host A's namespace for `duplex=half`, asked for its
counters for the report's configured vs measured rows."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from linkbridge.plugin import LinkError, format_address, host_port
from linkbridge.plugin.lab import lab_helper
from linkbridge_sim.radio import mean_deferral

Row = tuple[str, str, str, str]


def _in_netns(netns: str, *args: str) -> list[str]:
    return ["ip", "netns", "exec", netns, sys.executable, "-m", "linkbridge_sim.medium", *args]


@contextlib.contextmanager
def lab_medium(netns: str, address: tuple[str, int], seed: str,
               topology: str | None = None) -> Iterator[None]:
    """Run the medium in `netns` on `address` (with the `topology` file) until the context
    ends."""
    extra = ["--topology", topology] if topology else []
    with lab_helper(_in_netns(netns, "--listen", format_address(address), "--seed", seed,
                              *extra), "sim medium"):
        yield


def medium_stats(netns: str, address: tuple[str, int]) -> dict[str, Any]:
    """The counters of the medium at `address`, asked from inside `netns`."""
    done = subprocess.run(_in_netns(netns, "--stats", format_address(address)),
                          capture_output=True, text=True, timeout=10, check=False)
    if done.returncode != 0:
        raise LinkError(f"the lab's sim medium did not answer: {done.stderr.strip()[-300:]}")
    stats: dict[str, Any] = json.loads(done.stdout)
    return stats


def medium_rows(netns: str, address: tuple[str, int], sides: Mapping[str, str]) -> list[Row]:
    """Configured vs measured rows for each station the medium knows, labelled by `sides`
    (station host -> label)."""
    stats = medium_stats(netns, address)
    elapsed = stats["elapsed"]
    rows: list[Row] = []
    stations = sorted(stats["stations"].items(),
                      key=lambda item: sides.get(host_port(item[0])[0], item[0]))
    for key, station in stations:
        rows += station_rows(sides.get(host_port(key)[0], key), station, elapsed)
    return rows


def station_rows(label: str, s: Mapping[str, Any], elapsed: float) -> list[Row]:
    """One station's rows: airtime share, collisions, duty-cycle waits, queueing delay."""
    duty, window = s["duty"], s["duty_window"]
    limit = f"<= {duty * 100:.2f}%" if duty else "-"
    peak = f", peak {s['duty_peak'] / window * 100:.3f}% of a {window:g} s window" if duty else ""
    deferral = mean_deferral(s["persist"], s["slottime"], s.get("slotwait", False))
    sent = s["sent"]
    return [
        (f"airtime {label}", limit, f"{s['airtime'] / elapsed * 100:.2f}%" if elapsed else "n/a",
         f"{s['airtime']:.2f} s on air in {elapsed:.1f} s, {sent} frames{peak}"),
        (f"collisions {label}", f"persist {s['persist']}", f"{s['collisions']}",
         f"of {sent} frames sent, {s['queue_full']} queue drops, "
         f"{s.get('codel_drops', 0)} CoDel drops, {s.get('lost', 0)} lost by the loss model"),
        (f"duty wait {label}", limit, f"{s['duty_waits']}",
         f"frames waited {s['duty_wait_time']:.2f} s in all, {s['too_long']} too long"),
        (f"queueing {label}", f"{deferral * 1e3:.2f} ms",
         f"{s['queueing'] / sent * 1e3:.2f} ms" if sent else "n/a",
         "mean offer -> on air; configured: CSMA deferral on a free channel"),
    ]
