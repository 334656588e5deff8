"""System calls per packet of each data path, counted rather than timed (issue 33): the work a
relay does per ping round trip and per 64 KiB of TCP, which load from elsewhere on the machine
does not change.

For each variant (socat, the bare relay, plain linkbridge, `--offload on`), in a lab of its own
and one after the other: `perf trace -s` counts the system calls of both tunnel processes (all
their threads) while the idle tunnel waits, while `--pings` echo requests 5 ms apart cross it,
and while iperf3 sends TCP A -> B for `--seconds`. The idle count, scaled to each window's
length, is taken off (timers, keepalives: work per second, not per packet); what is left is
divided by the round trips, and by the 64 KiB units iperf3 moved. A call that failed is counted
apart, under its name and `!` (a read that met EAGAIN: `recvmsg!`).

Then each Python variant (all but socat) comes up once more with every thread under cProfile
(benchmarks/thread_profile), for the Python function calls per ping round trip of each thread,
both processes together (their start-up and the 5 warm-up pings included).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pstats
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from benchmarks.compare import VARIANT_SETUP, Running, iperf3_mbit
from benchmarks.running import run_measurements
from linkbridge.errors import LinkbridgeError
from linkbridge.lab.probes import ping
from linkbridge.lab.topology import TwoHosts, two_hosts

VARIANTS = ("socat", "bare", "linkbridge", "offload")
PYTHON_VARIANTS = ("bare", "linkbridge", "offload")
PROFILER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "thread_profile")
WARM_UP = 5  # pings before the counts start
MTU = 1472
UNIT = 65536  # bytes: the TCP figures are per 64 KiB moved (a super-packet at most)
SETTLE = 0.5  # seconds perf trace is given to attach before a window starts
ROW = re.compile(r"^\s+([a-z_0-9]+)\s+(\d+)\s+(\d+)\s")


@dataclass(frozen=True)
class Settings:
    pings: int
    seconds: float
    variants: tuple[str, ...]


@contextlib.contextmanager
def traced(pids: Sequence[int]) -> Iterator[Counter[str]]:
    """Count the system calls of `pids` (every thread) in the block into the Counter yielded
    (filled on exit): name -> calls that returned, `name!` -> calls that failed."""
    counts: Counter[str] = Counter()
    with tempfile.NamedTemporaryFile("r", suffix=".perf") as out:
        tracer = subprocess.Popen(["perf", "trace", "-s", "-o", out.name,
                                   "-p", ",".join(map(str, pids))],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(SETTLE)
        try:
            yield counts
        finally:
            tracer.send_signal(signal.SIGINT)
            tracer.wait(30)
        counts.update(summary_counts(out))


def summary_counts(lines: Iterable[str]) -> Counter[str]:
    """The calls of a `perf trace -s` summary, every thread's added up: name -> calls that
    returned, `name!` -> calls that failed."""
    counts: Counter[str] = Counter()
    for line in lines:
        if match := ROW.match(line):
            name, calls, errors = match[1], int(match[2]), int(match[3])
            if calls > errors:
                counts[name] += calls - errors
            if errors:
                counts[f"{name}!"] += errors
    return counts


def per_unit(counts: Counter[str], idle: Counter[str], idle_s: float, window_s: float,
             units: float) -> dict[str, float]:
    """`counts` less the idle rate over `window_s`, per unit of work (never below zero)."""
    return {name: max(0.0, calls - idle[name] * window_s / idle_s) / units
            for name, calls in counts.items()}


def measure(hosts: TwoHosts, running: Running, settings: Settings) -> tuple[dict[str, float],
                                                                           dict[str, float]]:
    """(system calls per ping round trip, per 64 KiB of TCP) of one running variant."""
    ping(hosts.a, running.destination, WARM_UP, interval=0.01)  # ARP, hellos: out of the way
    start = time.monotonic()
    with traced(running.pids) as idle:
        time.sleep(1.0)
    idle_s = time.monotonic() - start
    start = time.monotonic()
    with traced(running.pids) as pinged:
        result = ping(hosts.a, running.destination, settings.pings, interval=0.005)
    ping_s = time.monotonic() - start
    if len(result.rtts_ms) < settings.pings:
        raise LinkbridgeError(f"{len(result.rtts_ms)} of {settings.pings} pings answered")
    start = time.monotonic()
    with traced(running.pids) as sent:
        _mbit, moved = iperf3_mbit(hosts, running.destination, settings.seconds)
    tcp_s = time.monotonic() - start
    return (per_unit(pinged, idle, idle_s, ping_s, settings.pings),
            per_unit(sent, idle, idle_s, tcp_s, moved / UNIT))


@contextlib.contextmanager
def profiled(out: str) -> Iterator[None]:
    """Python processes started in the block profile every thread into `out` (thread_profile)."""
    saved = {key: os.environ.get(key) for key in ("PYTHONPATH", "LINKBRIDGE_BENCH_PROFILE")}
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (PROFILER, saved["PYTHONPATH"])))
    os.environ["LINKBRIDGE_BENCH_PROFILE"] = out
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def python_calls(name: str, settings: Settings) -> dict[str, float]:
    """Python function calls per ping round trip of variant `name`, by thread name (both
    processes together), counted by cProfile from start to stop."""
    calls: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="lb-profile-") as out:
        with two_hosts() as hosts, contextlib.ExitStack() as up:
            with profiled(out):
                running = up.enter_context(VARIANT_SETUP[name](hosts, MTU))
            ping(hosts.a, running.destination, WARM_UP, interval=0.01)
            ping(hosts.a, running.destination, settings.pings, interval=0.005)
        for file in os.listdir(out):  # PID-N-THREADNAME.prof, written as the processes ended
            thread = file.split("-", 2)[2].removesuffix(".prof")
            calls[thread] += pstats.Stats(os.path.join(out, file)).total_calls  # type: ignore[attr-defined]
    return {thread: count / (WARM_UP + settings.pings) for thread, count in calls.items()}


def run(settings: Settings) -> tuple[dict[str, tuple[dict[str, float], dict[str, float]]],
                                     dict[str, dict[str, float]]]:
    figures, calls = {}, {}
    for name in settings.variants:
        print(f"  {name}", file=sys.stderr, flush=True)
        with two_hosts() as hosts, VARIANT_SETUP[name](hosts, MTU) as running:
            figures[name] = measure(hosts, running, settings)
        if name in PYTHON_VARIANTS:
            calls[name] = python_calls(name, settings)
    return figures, calls


def table(figures: dict[str, dict[str, float]], floor: float) -> list[str]:
    """System calls (rows, those of at least `floor` per unit in some variant) by variant."""
    names = sorted({call for counts in figures.values() for call, n in counts.items()
                    if n >= floor}, key=lambda call: -max(c.get(call, 0) for c in
                                                            figures.values()))
    rows = [["syscall", *figures]]
    rows += [[call, *(f"{counts.get(call, 0.0):.2f}" for counts in figures.values())]
             for call in names]
    rows.append(["total", *(f"{sum(counts.values()):.2f}" for counts in figures.values())])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
            for row in rows]


def parse_args(argv: Sequence[str]) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m benchmarks syscalls", description=__doc__)
    parser.add_argument("--pings", type=int, default=200, help="echo requests (default 200)")
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="duration of the TCP test (default 2; iperf3 runs whole seconds)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated subset of {','.join(VARIANTS)}")
    args = parser.parse_args(argv)
    variants = tuple(name for name in args.variants.split(",") if name)
    if unknown := sorted(set(variants) - set(VARIANTS)):
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    if args.pings < 1 or args.seconds <= 0:
        parser.error("--pings and --seconds must be positive")
    return Settings(args.pings, args.seconds, variants)


def main(argv: Sequence[str]) -> int:
    settings = parse_args(argv)
    for tool in ("perf", "iperf3"):
        if shutil.which(tool) is None:
            print(f"benchmarks: error: {tool} is not installed", file=sys.stderr)
            return 1
    status, result = run_measurements(lambda: run(settings), "network namespaces, TUN, perf")
    if result is None:
        return status
    figures, calls = result
    print(f"system calls of both tunnel processes (all threads), idle rate taken off; "
          f"`!`: the call failed (EAGAIN...); load {os.getloadavg()[0]:.1f}")
    print(f"per ping round trip ({settings.pings} pings 5 ms apart):")
    print("\n".join(table({name: pings for name, (pings, _tcp) in figures.items()}, 0.05)))
    print(f"per {UNIT // 1024} KiB of TCP A -> B (iperf3, {settings.seconds:g} s):")
    print("\n".join(table({name: tcp for name, (_pings, tcp) in figures.items()}, 0.05)))
    if calls:
        print("Python function calls per ping round trip, by thread (cProfile; both processes, "
              "start-up and warm-up included):")
        print("\n".join(table(calls, 0.5)[:-1]).replace("syscall", "thread ", 1))
    return 0
