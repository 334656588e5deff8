"""Side by side: the bare veth, the socat variant and linkbridge over `udp:`, without and with
TUN offloads (`offload`: `--offload on`, docs/offload.md), and the ceiling of the latter: a bare
Python relay with the same TUN offloads that moves each super-packet as one UDP datagram
(`bare`: benchmarks/bare_relay.py).

Every variant has a lab of its own (two namespaces joined by veth, the same addresses and MTU in
each). Each repetition brings all variants up at once, pings them in short rounds taken in a new
random order every round, measures TCP throughput and the 64-byte UDP packet rate of one variant
after the other, and takes them down again: a spell of load from elsewhere on the machine falls
on all variants alike, and on the pings, which are the most sensitive to it, within a second.
With the offload variant the table adds its TCP over IPv6 and over `--via sim:` with 0.1 % loss
(measured for linkbridge alike), its ratios to linkbridge and socat, and its targets.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from pyroute2 import IPRoute

from benchmarks.running import run_measurements, verdict_status
from linkbridge.errors import LinkbridgeError
from linkbridge.lab import netns
from linkbridge.lab.probes import ping, tcp_transfer, udp_flood
from linkbridge.lab.processes import spawn
from linkbridge.lab.run import lab_tunnels
from linkbridge.lab.topology import (
    OVERLAY,
    OVERLAY6,
    OVERLAY6_PREFIX,
    UNDERLAY,
    TwoHosts,
    two_hosts,
)
from linkbridge.plugin.registry import LinkRegistry, get_plugin_manager
from linkbridge.tunnel.setup import IPV6_MIN_MTU

VARIANTS = ("veth", "socat", "linkbridge", "offload", "bare")
LOSSY = "sim:?loss=0.1%"  # the --via of the lossy TCP row
# that row's transfer is this many times --seconds: a loss-bound transfer of 2-4 s moved by up
# to 20% from one run to the next (docs/performance.md), more than before-after's 5% can tell
LOSSY_TIMES = 3
SOCAT_TUN = "lbs0"
SOCAT_PORT = 47001
BARE_TUN = "lbb0"
BARE_PORT = 47002
IPERF_PORT = 5201
TRANSFER_RATE = 100e6  # bytes per second assumed when sizing the Python TCP transfer
IFA_F_NODAD = 0x02  # an address used at once, without duplicate address detection
CLK_TCK = os.sysconf("SC_CLK_TCK")
PING_ROUND = 20  # pings per variant before the next variant's turn


@dataclass
class Running:
    """A variant that is up: where to send to, and the processes that carry its packets."""

    destination: str
    pids: list[int] = field(default_factory=list)
    destination6: str | None = None  # where to send TCP over IPv6, where the variant has it


@dataclass
class Sample:
    """One repetition's figures for one variant (None: not applicable)."""

    tcp_mbit: float
    rtt_avg_ms: float
    rtt_p99_ms: float
    pps: float
    loss_percent: float
    cpu_s_per_gb: float | None
    rss_mb: float | None
    tcp6_mbit: float | None = None
    tcp_loss_mbit: float | None = None


@dataclass(frozen=True)
class Metric:
    label: str
    key: str
    fmt: str
    target: str = ""
    meets: Callable[[float], bool] | None = None
    better: str = "lower"  # or "higher"; "": neither (benchmarks before-after leaves it out)


METRICS = (
    Metric("TCP Mbit/s", "tcp_mbit", "{:.0f}", ">= 1.5", lambda r: r >= 1.5, "higher"),
    Metric("ping RTT avg ms", "rtt_avg_ms", "{:.3f}", "<= 1.1", lambda r: r <= 1.1),
    Metric("ping RTT p99 ms", "rtt_p99_ms", "{:.3f}"),
    Metric("64 B UDP pkt/s rx", "pps", "{:.0f}", ">= 1.5", lambda r: r >= 1.5, "higher"),
    # the share of a flood sent as fast as the sender can that is lost: how far it overran
    # the tunnel, which the packet rate received already says
    Metric("64 B UDP loss %", "loss_percent", "{:.1f}", better=""),
    Metric("CPU s per GB (both)", "cpu_s_per_gb", "{:.2f}"),
    Metric("RSS MB (max side)", "rss_mb", "{:.1f}"),
)
RSS_LIMIT_MB = 60.0
# Rows added when the offload variant runs, and the offload targets of every row (issue 20):
# label, key, and the verdict as (target text, test of {variant: median}).
EXTRA_METRICS = (
    Metric("TCP IPv6 Mbit/s", "tcp6_mbit", "{:.0f}", better="higher"),
    Metric(f"TCP Mbit/s via {LOSSY}", "tcp_loss_mbit", "{:.0f}", better="higher"),
)
OffloadTarget = tuple[str, Callable[[dict[str, float]], bool]]
OFFLOAD_TARGETS: dict[str, OffloadTarget] = {
    "tcp_mbit": (">= 3x lb, >= 6x socat",
                 lambda m: m["offload"] >= 3 * m["linkbridge"] and m["offload"] >= 6 * m["socat"]),
    "tcp6_mbit": (">= 3x lb", lambda m: m["offload"] >= 3 * m["linkbridge"]),
    "tcp_loss_mbit": (">= 1x lb", lambda m: m["offload"] >= m["linkbridge"]),
    "rtt_avg_ms": ("<= 1.1x socat", lambda m: m["offload"] <= 1.1 * m["socat"]),
    "pps": (">= 1.5x socat", lambda m: m["offload"] >= 1.5 * m["socat"]),
    "cpu_s_per_gb": ("<= 3", lambda m: m["offload"] <= 3.0),
    "rss_mb": (f"< {RSS_LIMIT_MB:.0f} MB", lambda m: m["offload"] < RSS_LIMIT_MB),
}


@dataclass(frozen=True)
class Settings:
    reps: int
    seconds: float
    pings: int
    mtu: int
    variants: tuple[str, ...]
    use_iperf: bool


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time consumed so far by the processes `pids` (and their threads)."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def peak_rss_mb(pid: int) -> float:
    """The peak resident set size (VmHWM) of process `pid` in MB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise LinkbridgeError(f"no VmHWM for process {pid}")


def set_mtu(ns_name: str, ifname: str, mtu: int, timeout: float = 5.0) -> None:
    """Wait for `ifname` to appear in `ns_name`, then set its MTU."""
    deadline = time.monotonic() + timeout
    with netns.inside(ns_name), IPRoute() as ipr:
        while not (found := ipr.link_lookup(ifname=ifname)):
            if time.monotonic() > deadline:
                raise LinkbridgeError(f"{ifname} did not appear in {ns_name}")
            time.sleep(0.02)
        ipr.link("set", index=found[0], mtu=mtu)


def wait_route(ns_name: str, destination: str, ifname: str, timeout: float = 5.0) -> None:
    """Wait until `destination` is routed through `ifname` (the device is up with its address)."""
    deadline = time.monotonic() + timeout
    with netns.inside(ns_name), IPRoute() as ipr:
        index = ipr.link_lookup(ifname=ifname)[0]
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                if ipr.route("get", dst=destination)[0].get_attr("RTA_OIF") == index:
                    return
            time.sleep(0.02)
    raise LinkbridgeError(f"no route to {destination} through {ifname} in {ns_name}")


@contextlib.contextmanager
def veth_variant(hosts: TwoHosts, mtu: int) -> Iterator[Running]:
    yield Running(UNDERLAY[1])


@contextlib.contextmanager
def stopped_at_exit() -> Iterator[list[subprocess.Popen[bytes]]]:
    """A list for the processes of a variant, each terminated (killed if need be) on exit."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


SIDES = ((0, 1), (1, 0))  # (this host, the other) as indexes of UNDERLAY and OVERLAY


@contextlib.contextmanager
def socat_variant(hosts: TwoHosts, mtu: int) -> Iterator[Running]:
    """socat joining a TUN device to a UDP socket on each host, as the original socat variant."""
    socat = shutil.which("socat")
    if socat is None:
        raise LinkbridgeError("socat is not installed (./run.sh bench installs it)")
    with stopped_at_exit() as procs:
        for ns_name, (here, there) in zip((hosts.a, hosts.b), SIDES, strict=True):
            argv = [socat, f"TUN:{OVERLAY[here]}/30,tun-type=tun,iff-no-pi,iff-up,"
                           f"tun-name={SOCAT_TUN}",
                    f"UDP-DATAGRAM:{UNDERLAY[there]}:{SOCAT_PORT},"
                    f"bind={UNDERLAY[here]}:{SOCAT_PORT}"]
            procs.append(spawn(ns_name, argv, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL))
            set_mtu(ns_name, SOCAT_TUN, mtu)
        wait_route(hosts.a, OVERLAY[1], SOCAT_TUN)
        wait_route(hosts.b, OVERLAY[0], SOCAT_TUN)
        yield Running(OVERLAY[1], [proc.pid for proc in procs])


@contextlib.contextmanager
def bare_variant(hosts: TwoHosts, mtu: int) -> Iterator[Running]:
    """The bare relay (benchmarks/bare_relay.py) on each host, its device addressed here as
    linkbridge addresses its own (IPv6 too where the MTU allows it)."""
    ipv6 = mtu >= IPV6_MIN_MTU
    with stopped_at_exit() as procs:
        for ns_name, (here, there) in zip((hosts.a, hosts.b), SIDES, strict=True):
            procs.append(spawn(ns_name, [sys.executable, "-m", "benchmarks.bare_relay", BARE_TUN,
                                         UNDERLAY[here], str(BARE_PORT), UNDERLAY[there]],
                               stdout=subprocess.DEVNULL))
            set_mtu(ns_name, BARE_TUN, mtu)
            with netns.inside(ns_name), IPRoute() as ipr:
                index = ipr.link_lookup(ifname=BARE_TUN)[0]
                ipr.addr("add", index=index, address=OVERLAY[here], prefixlen=30)
                if ipv6:
                    ipr.addr("add", index=index, address=OVERLAY6[here],
                             prefixlen=OVERLAY6_PREFIX, flags=IFA_F_NODAD)
                ipr.link("set", index=index, state="up")
        wait_route(hosts.a, OVERLAY[1], BARE_TUN)
        wait_route(hosts.b, OVERLAY[0], BARE_TUN)
        yield Running(OVERLAY[1], [proc.pid for proc in procs], OVERLAY6[1] if ipv6 else None)


@contextlib.contextmanager
def linkbridge_variant(hosts: TwoHosts, mtu: int, extra: Sequence[str] = (),
                       via: Sequence[str] = (), program: Sequence[str] = ()
                       ) -> Iterator[Running]:
    """linkbridge over `udp:` (with IPv6 too where the MTU allows it), started by `program`
    (default: this interpreter's `python -m linkbridge`)."""
    registry = LinkRegistry(get_plugin_manager())
    ipv6 = mtu >= IPV6_MIN_MTU
    with lab_tunnels(hosts, "udp", via, mtu=mtu, extra_args=extra, ipv6=ipv6,
                     registry=registry, program=program) as (side_a, side_b):
        assert side_a.proc is not None and side_b.proc is not None
        yield Running(OVERLAY[1], [side_a.proc.pid, side_b.proc.pid],
                      OVERLAY6[1] if ipv6 else None)


OFFLOAD = ("--offload", "on")


@contextlib.contextmanager
def offload_variant(hosts: TwoHosts, mtu: int) -> Iterator[Running]:
    """linkbridge over `udp:` with `--offload on`."""
    with linkbridge_variant(hosts, mtu, OFFLOAD) as running:
        yield running


VARIANT_SETUP = {"veth": veth_variant, "socat": socat_variant, "linkbridge": linkbridge_variant,
                 "offload": offload_variant, "bare": bare_variant}
Setup = Callable[[TwoHosts, int], contextlib.AbstractContextManager[Running]]
# the `linkbridge up` options of each variant that runs linkbridge
LINKBRIDGE_EXTRA: dict[str, Sequence[str]] = {"linkbridge": (), "offload": OFFLOAD}


def iperf3_mbit(hosts: TwoHosts, destination: str, seconds: float) -> tuple[float, int]:
    """TCP A -> B with iperf3 for `seconds` (whole, at least 1): (Mbit/s, bytes received)."""
    whole = max(1, round(seconds))
    server = spawn(hosts.b, ["iperf3", "-s", "-1", "-B", destination, "-p", str(IPERF_PORT)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _attempt in range(50):
            client = spawn(hosts.a, ["iperf3", "-c", destination, "-p", str(IPERF_PORT), "-J",
                                     "-t", str(whole)],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            try:
                out, _ = client.communicate(timeout=whole + 30)
            except subprocess.TimeoutExpired:
                client.kill()
                client.wait()
                raise LinkbridgeError("iperf3 did not finish in time") from None
            result = json.loads(out or b"{}")
            if "error" not in result and "end" in result:
                received = result["end"]["sum_received"]
                return received["bits_per_second"] / 1e6, int(received["bytes"])
            time.sleep(0.1)  # the server was not listening yet
        raise LinkbridgeError(f"iperf3 failed: {result.get('error', 'no result')}")
    finally:
        server.kill()
        server.wait()


def python_tcp_mbit(hosts: TwoHosts, destination: str, seconds: float) -> tuple[float, int]:
    """TCP A -> B with the lab's own checked transfer, sized to last about `seconds`."""
    result = tcp_transfer(hosts.b, destination, hosts.a, int(seconds * TRANSFER_RATE))
    if not result.intact:
        raise LinkbridgeError("TCP transfer content corrupted")
    return result.mbit_per_s, result.received_bytes


def p99(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def interleaved_pings(hosts: dict[str, TwoHosts], running: dict[str, Running], count: int,
                      rng: random.Random) -> dict[str, list[float]]:
    """`count` echo requests 5 ms apart per variant, in rounds of PING_ROUND per variant with
    the variants in a new random order each round; the round-trip times in ms per variant."""
    rtts: dict[str, list[float]] = {name: [] for name in running}
    for start in range(0, count, PING_ROUND):
        order = list(running)
        rng.shuffle(order)
        for name in order:
            result = ping(hosts[name].a, running[name].destination,
                          min(PING_ROUND, count - start), interval=0.005)
            rtts[name] += result.rtts_ms
    for name, values in rtts.items():
        if not values:
            raise LinkbridgeError(f"{name}: no ping replies")
    return rtts


def measure(hosts: TwoHosts, running: Running, settings: Settings, rtts: list[float]) -> Sample:
    """The throughput figures of one variant, with its round-trip times measured before."""
    tcp = iperf3_mbit if settings.use_iperf else python_tcp_mbit
    cpu_before = cpu_seconds(running.pids)
    mbit, moved = tcp(hosts, running.destination, settings.seconds)
    cpu_used = cpu_seconds(running.pids) - cpu_before
    flood = udp_flood(hosts.a, hosts.b, running.destination, 64, settings.seconds)
    tcp6 = tcp(hosts, running.destination6, settings.seconds)[0] if running.destination6 \
        else None
    return Sample(
        tcp_mbit=mbit,
        rtt_avg_ms=statistics.fmean(rtts),
        rtt_p99_ms=p99(rtts),
        pps=flood.received_per_s,
        loss_percent=flood.loss_percent,
        cpu_s_per_gb=cpu_used / (moved / 1e9) if running.pids and moved else None,
        rss_mb=max(peak_rss_mb(pid) for pid in running.pids) if running.pids else None,
        tcp6_mbit=tcp6,
    )


def run(settings: Settings) -> dict[str, list[Sample]]:
    """Every repetition brings all variants up, each in its own lab, and measures them."""
    samples: dict[str, list[Sample]] = {name: [] for name in settings.variants}
    rng = random.Random(0)
    with contextlib.ExitStack() as labs:
        hosts = {name: labs.enter_context(two_hosts()) for name in settings.variants}
        for rep in range(settings.reps):
            measured = repetition(hosts, {name: VARIANT_SETUP[name]
                                          for name in settings.variants}, settings, rng, rep)
            if "offload" in settings.variants:
                lossy_tcp(hosts, measured, settings, rep)
            for name, sample in measured.items():
                samples[name].append(sample)
    return samples


def repetition(hosts: dict[str, TwoHosts], setups: dict[str, Setup], settings: Settings,
               rng: random.Random, rep: int) -> dict[str, Sample]:
    """One repetition's samples: every variant of `setups` up at once, each in its lab of
    `hosts`, the pings interleaved, then each measured in turn; all taken down again."""
    with contextlib.ExitStack() as up:
        running = {name: up.enter_context(setup(hosts[name], settings.mtu))
                   for name, setup in setups.items()}
        progress(rep, settings, "pings, all variants taking turns")
        rtts = interleaved_pings(hosts, running, settings.pings, rng)
        samples: dict[str, Sample] = {}
        for name in setups:
            progress(rep, settings, name)
            samples[name] = measure(hosts[name], running[name], settings, rtts[name])
    return samples


def lossy_tcp(hosts: dict[str, TwoHosts], samples: dict[str, Sample], settings: Settings,
              rep: int, program: Sequence[str] = (), doing: str = "") -> None:
    """TCP over the variants of `samples` that run linkbridge with `--via LOSSY`, into their
    samples (a lost chunk costs the offload variant a whole super-packet); `program` as for
    linkbridge_variant(), `doing` labels the progress lines."""
    tcp = iperf3_mbit if settings.use_iperf else python_tcp_mbit
    via = (f"{LOSSY}&seed={rep + 1}",)
    for name, extra in LINKBRIDGE_EXTRA.items():
        if name not in samples:
            continue
        progress(rep, settings, f"{doing}{name} via {LOSSY}")
        with linkbridge_variant(hosts[name], settings.mtu, extra, via, program) as running:
            mbit = tcp(hosts[name], running.destination, settings.seconds * LOSSY_TIMES)[0]
        samples[name] = replace(samples[name], tcp_loss_mbit=mbit)


def progress(rep: int, settings: Settings, doing: str) -> None:
    print(f"  rep {rep + 1}/{settings.reps}: {doing}", file=sys.stderr, flush=True)


def spread(values: Sequence[float], fmt: str) -> str:
    """median [min..max], or just the value for a single repetition."""
    if len(values) == 1:
        return fmt.format(values[0])
    return (f"{fmt.format(statistics.median(values))} "
            f"[{fmt.format(min(values))}..{fmt.format(max(values))}]")


def table(samples: dict[str, list[Sample]]) -> list[str]:
    """One row per metric: median [min..max] per variant, and linkbridge/socat of the medians;
    with the offload variant beside linkbridge and socat, its rows and ratios to both too."""
    names = list(samples)
    header = ["metric", *names]
    compare = "linkbridge" in samples and "socat" in samples
    offload = compare and "offload" in samples
    if compare:
        header += ["lb/socat", "target"]
    ceiling = ("bare",) if offload and "bare" in samples else ()
    if offload:
        header += ["off/lb", "off/socat", *(["off/bare"] if ceiling else []), "offload target"]
    rows = [header]
    for metric in METRICS + (EXTRA_METRICS if offload else ()):
        row = [metric.label]
        medians: dict[str, float] = {}
        for name in names:
            values = [v for s in samples[name] if (v := getattr(s, metric.key)) is not None]
            row.append(spread(values, metric.fmt) if values else "-")
            if values:
                medians[name] = statistics.median(values)
        if compare:
            lb, socat = medians.get("linkbridge"), medians.get("socat")
            ratio = lb / socat if lb is not None and socat else None
            row.append(f"{ratio:.2f}" if ratio is not None else "-")
            verdict = ""
            if metric.meets is not None and ratio is not None:
                verdict = f"{metric.target} {'ok' if metric.meets(ratio) else 'MISSED'}"
            elif metric.key == "rss_mb" and lb is not None:
                verdict = f"lb < {RSS_LIMIT_MB:.0f} MB {'ok' if lb < RSS_LIMIT_MB else 'MISSED'}"
            row.append(verdict)
        if offload:
            row += offload_cells(metric.key, medians, ("linkbridge", "socat", *ceiling))
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in rows]


def offload_cells(key: str, medians: dict[str, float], others: Sequence[str]) -> list[str]:
    """offload/other for each of `others` and the offload target's verdict for one row."""
    off = medians.get("offload")
    cells = [f"{off / medians[other]:.2f}" if off is not None and medians.get(other) else "-"
             for other in others]
    target = OFFLOAD_TARGETS.get(key)
    if target is None:
        return [*cells, ""]
    text, meets = target
    try:
        ok = meets(medians)
    except KeyError:  # a variant's figure is missing: nothing to compare with
        return [*cells, f"{text} -"]
    return [*cells, f"{text} {'ok' if ok else 'MISSED'}"]


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs ({model}), kernel {os.uname().release}"


def measure_options(parser: argparse.ArgumentParser, reps: str, variants: Sequence[str],
                    default: Sequence[str]) -> None:
    """The options of what is measured: `reps` names the repetitions' option, `variants` are
    those --variants chooses from (`default` by default)."""
    parser.add_argument(reps, type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="duration of the TCP and UDP tests (default 3; iperf3 runs "
                             "whole seconds)")
    parser.add_argument("--pings", type=int, default=200, help="pings per repetition")
    parser.add_argument("--mtu", type=int, default=1472, help="tunnel MTU (default 1472)")
    parser.add_argument("--variants", default=",".join(default),
                        help=f"comma-separated subset of {','.join(variants)} "
                             f"(default {','.join(default)})")
    parser.add_argument("--no-iperf3", action="store_true",
                        help="use the lab's Python TCP transfer even when iperf3 is installed")


def measure_settings(parser: argparse.ArgumentParser, args: argparse.Namespace, reps: int,
                     variants: Sequence[str]) -> Settings:
    """The Settings of the options measure_options() added, checked (parser.error())."""
    chosen = tuple(name for name in args.variants.split(",") if name)
    unknown = sorted(set(chosen) - set(variants))
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(variants)}")
    if reps < 1 or args.seconds <= 0 or args.pings < 1:
        parser.error("the repetitions, --seconds and --pings must be positive")
    if not 68 <= args.mtu <= 65535:
        parser.error("--mtu must be 68 to 65535")
    return Settings(reps, args.seconds, args.pings, args.mtu, chosen,
                    use_iperf=not args.no_iperf3 and shutil.which("iperf3") is not None)


def parse_args(argv: Sequence[str]) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m benchmarks compare", description=__doc__)
    measure_options(parser, "--reps", VARIANTS, VARIANTS)
    args = parser.parse_args(argv)
    return measure_settings(parser, args, args.reps, VARIANTS)


def main(argv: Sequence[str]) -> int:
    settings = parse_args(argv)
    status, samples = run_measurements(lambda: run(settings), "network namespaces, veth, TUN")
    if samples is None:
        return status
    tcp_tool = "iperf3" if settings.use_iperf else "the lab's Python transfer"
    print(f"linkbridge benchmark: {settings.reps} reps x {settings.seconds:g} s, "
          f"{settings.pings} pings, MTU {settings.mtu}, TCP by {tcp_tool}")
    print(f"machine: {machine()}")
    print("cells: median [min..max] over the repetitions")
    rows = table(samples)
    print("\n".join(rows), flush=True)
    return verdict_status(rows)
