"""The offload path's cost, side by side: CPU seconds per GB of each tunnel process (user and
system apart) for TCP, and CPU per packet for 64-byte UDP, of `--offload on` from this tree,
from another commit (`--base`, before a change) and of the bare relay (benchmarks/bare_relay.py,
the ceiling), in one run.

Every variant has a lab of its own and all are up at once; each repetition measures them one
after the other, in turn reversed every other repetition, so that load from elsewhere on the
machine falls on all alike. CPU time counts what the processes used, whatever else runs: the
figure to compare on a loaded machine, where throughput says little. The offload target of
issue 33 (<= 3 CPU s/GB, both sides) is checked on this tree's median.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from benchmarks.base_tree import Installed, base_tree, this_tree
from benchmarks.compare import (
    OFFLOAD,
    Running,
    bare_variant,
    iperf3_mbit,
    linkbridge_variant,
    peak_rss_mb,
)
from benchmarks.running import run_measurements, verdict_status
from linkbridge.lab.probes import udp_flood
from linkbridge.lab.topology import TwoHosts, two_hosts

CLK_TCK = os.sysconf("SC_CLK_TCK")
CPU_TARGET = 3.0  # CPU seconds per GB, both sides together (issue 33)
MTU = 1472
KEYS = ("mbit", "a_user", "a_sys", "b_user", "b_sys", "both", "pps", "us_per_packet", "rss_mb")


@dataclass(frozen=True)
class Settings:
    reps: int
    seconds: float
    base: str | None  # a commit to measure beside this tree


def user_sys(pid: int) -> tuple[float, float]:
    """User and system CPU seconds process `pid` (all its threads) has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


@contextlib.contextmanager
def offload_from(hosts: TwoHosts, tree: Installed) -> Iterator[Running]:
    """Tunnels with `--offload on` running the linkbridge of `tree`."""
    with linkbridge_variant(hosts, MTU, OFFLOAD, program=tree.program) as running:
        yield running


def measure(hosts: TwoHosts, running: Running, seconds: float) -> dict[str, float]:
    """One repetition's figures of one variant: TCP, then 64-byte UDP."""
    before = [user_sys(pid) for pid in running.pids]
    mbit, moved = iperf3_mbit(hosts, running.destination, seconds)
    used = [(user - user0, system - system0) for (user0, system0), (user, system)
            in zip(before, (user_sys(pid) for pid in running.pids), strict=True)]
    gb = moved / 1e9
    cpu_before = sum(map(sum, (user_sys(pid) for pid in running.pids)))
    flood = udp_flood(hosts.a, hosts.b, running.destination, 64, seconds)
    cpu = sum(map(sum, (user_sys(pid) for pid in running.pids))) - cpu_before
    return {"mbit": mbit, "a_user": used[0][0] / gb, "a_sys": used[0][1] / gb,
            "b_user": used[1][0] / gb, "b_sys": used[1][1] / gb,
            "both": sum(map(sum, used)) / gb, "pps": flood.received_per_s,
            "us_per_packet": cpu / max(1, flood.received_per_s * seconds) * 1e6,
            "rss_mb": max(peak_rss_mb(pid) for pid in running.pids)}


def run(settings: Settings) -> dict[str, list[dict[str, float]]]:
    names = ["offload", *([f"offload@{settings.base}"] if settings.base else []), "bare"]
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    trees = {"offload": this_tree()}
    if settings.base:
        trees[names[1]] = base_tree(settings.base)
    with contextlib.ExitStack() as labs:
        hosts = {name: labs.enter_context(two_hosts()) for name in names}
        for rep in range(settings.reps):
            with contextlib.ExitStack() as up:
                running = {name: up.enter_context(offload_from(hosts[name], tree))
                           for name, tree in trees.items()}
                running["bare"] = up.enter_context(bare_variant(hosts["bare"], MTU))
                for name in names if rep % 2 == 0 else names[::-1]:
                    print(f"  rep {rep + 1}/{settings.reps}: {name}", file=sys.stderr, flush=True)
                    samples[name].append(measure(hosts[name], running[name], settings.seconds))
    return samples


def table(samples: dict[str, list[dict[str, float]]]) -> list[str]:
    """One row per variant: the median of each figure; then the verdict on CPU s/GB."""
    rows = [["variant", *KEYS]]
    for name, reps in samples.items():
        rows.append([name, *(f"{statistics.median(rep[key] for rep in reps):.2f}"
                             for key in KEYS)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
             for row in rows]
    both = statistics.median(rep["both"] for rep in samples["offload"])
    lines.append(f"offload CPU s per GB (both sides) {both:.2f}: <= {CPU_TARGET:g} "
                 f"{'ok' if both <= CPU_TARGET else 'MISSED'}")
    return lines


def parse_args(argv: Sequence[str]) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m benchmarks offload-cpu",
                                     description=__doc__)
    parser.add_argument("--reps", type=int, default=4, help="repetitions (default 4)")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="duration of each TCP and UDP test (default 3)")
    parser.add_argument("--base", help="a commit whose offload path runs beside this tree's "
                                       "(installed once under /var/tmp/linkbridge-base-*)")
    args = parser.parse_args(argv)
    if args.reps < 1 or args.seconds <= 0:
        parser.error("--reps and --seconds must be positive")
    return Settings(args.reps, args.seconds, args.base)


def main(argv: Sequence[str]) -> int:
    settings = parse_args(argv)
    status, samples = run_measurements(lambda: run(settings), "network namespaces, TUN")
    if samples is None:
        return status
    print(f"offload CPU: {settings.reps} reps x {settings.seconds:g} s, MTU {MTU}; medians; "
          "a_/b_: CPU s per GB of the sending and the receiving side's process; "
          f"load at the end {os.getloadavg()[0]:.1f}")
    lines = table(samples)
    print("\n".join(lines), flush=True)
    return verdict_status(lines)
