"""Several links per peer (docs/multilink.md): issue 29's figures, side by side in one run.

Two lab hosts joined by two links, each on a veth pair of its own, encryption on:

- balance: one TCP transfer over two `sim:?rate=10mbit&limit=100` links (`--link-policy
  balance`) >= 1.6x the same transfer over one such link; beside it the same with
  `--reorder-wait 0` (no resequencing), and over a second link with 20 ms more delay both
  ways, with and without resequencing, and with the sender on CUBIC (a delay-based
  congestion control such as BBR keeps the faster link's queue below the slower one's delay)
- failover: `udp:` primary + `sim:?rate=9600&mtu=100` backup, `--keepalive 0.2` (link timeout
  0.45 s), pings every 0.05 s: from each of 10 cuts of the primary (its veth end in host A
  set down) to the first reply over the backup: median <= 0.75 s, worst <= 1 s
- duplicate: two `sim:?loss=10%` links (seeds 11 and 73), 2000 pings: >= 98.5% of the
  packets A's device sent delivered to B's, none twice, and every one that a link carried
  (the links' sim: traces say which each lost): the loss budget, side by side

Prints each case's figures and `ok` or `MISSED`; exits 1 when a target is missed. Needs root
(network namespaces, TUN devices).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from linkbridge_sim.trace import losses_of_size, read_trace

from benchmarks.running import run_measurements, verdict_status
from linkbridge.lab.links import first_reply, set_veth, status_path
from linkbridge.lab.options import LabOptions
from linkbridge.lab.probes import PingResult, ping, tcp_transfer
from linkbridge.lab.run import TUN_NAME, lab_run_tunnels
from linkbridge.lab.topology import OVERLAY, TwoHosts, link_stats, two_hosts
from linkbridge.ops.status import read_one
from linkbridge.plugin.registry import LinkRegistry, get_plugin_manager

TEN_MBIT = "sim:?rate=10mbit&limit=100"
DELAYED = TEN_MBIT + "&delay=20ms"
BACKUP = "sim:?rate=9600&mtu=100&limit=24"  # the backup, with a queue of 2 s
LOSSY = "sim:?loss=10%&seed={}"
# seeds whose draws are the channel the issue names: each link loses 10% (+-1) and both 1.0%
# (0.7-1.2) over every stretch of 1000 or 2000 frames at alignments -3..3 (docs/multilink.md)
DUPLICATE_SEEDS = (11, 73)
PING_SIZE = 64  # the measured pings' payload: told apart by size from the handshake's (56)
BALANCE_TARGET = 1.6
FAILOVER_MEDIAN, FAILOVER_WORST = 0.75, 1.0
DUPLICATE_TARGET = 0.985
PING_WAIT = 0.1  # seconds each ping waits for its reply: they go on every 0.05 s across a cut


def verdict(met: bool) -> str:
    return "ok" if met else "MISSED"


def goodput(hosts: TwoHosts, registry: LinkRegistry, links: Sequence[str], size: int,
            extra: Sequence[str] = (), congestion: str | None = None) -> tuple[float, bool]:
    """(Mbit/s of TCP payload A -> B, content intact) over `links` with `extra` options, the
    sender's congestion control `congestion` (None: the host's)."""
    options = LabOptions(link=links[0], more_links=tuple(links[1:]), encrypt=True)
    policy = ["--link-policy", "balance", "--keepalive", "0.2"] if len(links) > 1 else []
    with lab_run_tunnels(hosts, options, registry, [*policy, *extra]):
        transfer = tcp_transfer(hosts.b, OVERLAY[1], hosts.a, size, timeout=30.0,
                                congestion=congestion)
    return transfer.received_bytes * 8 / transfer.seconds / 1e6, transfer.intact


def balance(hosts: TwoHosts, registry: LinkRegistry, size: int) -> list[str]:
    one, one_ok = goodput(hosts, registry, [TEN_MBIT], size)
    two, two_ok = goodput(hosts, registry, [TEN_MBIT, TEN_MBIT], size)
    unordered, unordered_ok = goodput(hosts, registry, [TEN_MBIT, TEN_MBIT], size,
                                      ["--reorder-wait", "0"])
    skewed, skewed_ok = goodput(hosts, registry, [TEN_MBIT, DELAYED], size)
    skewed_raw, skewed_raw_ok = goodput(hosts, registry, [TEN_MBIT, DELAYED], size,
                                        ["--reorder-wait", "0"])
    skewed_cubic, skewed_cubic_ok = goodput(hosts, registry, [TEN_MBIT, DELAYED], size,
                                            congestion="cubic")
    ratio = two / one
    intact = all((one_ok, two_ok, unordered_ok, skewed_ok, skewed_raw_ok, skewed_cubic_ok))
    return [
        f"balance, TCP goodput of {size / 1e6:g} MB (Mbit/s, the host's congestion control "
        f"{default_congestion()}): one link {one:.2f}; two links {two:.2f} (no resequencing "
        f"{unordered:.2f}); the second 20 ms slower {skewed:.2f} (no resequencing "
        f"{skewed_raw:.2f}; cubic {skewed_cubic:.2f})",
        f"  two links / one link {ratio:.2f} (target >= {BALANCE_TARGET}, every transfer "
        f"intact: {intact}): {verdict(ratio >= BALANCE_TARGET and intact)}",
    ]


def default_congestion() -> str:
    with open("/proc/sys/net/ipv4/tcp_congestion_control", encoding="ascii") as file:
        return file.read().strip()


def pinging(hosts: TwoHosts, seconds: float) -> tuple[threading.Thread, list[PingResult]]:
    """Pings A -> B every 0.05 s for about `seconds`, in a thread (started)."""
    result: list[PingResult] = []
    thread = threading.Thread(target=lambda: result.append(
        ping(hosts.a, OVERLAY[1], count=round(seconds / 0.05), interval=0.05,
             timeout=PING_WAIT)), daemon=True)
    thread.start()
    return thread, result


def primary_active(pid: int) -> bool:
    path = status_path(pid, TUN_NAME)
    document = read_one(path) if path else None
    return bool(document and document.get("links") and document["links"][0].get("active"))


def failover(hosts: TwoHosts, registry: LinkRegistry, cuts: int) -> list[str]:
    """`cuts` cuts of the primary, each held 1.5 s and restored until traffic is back on it
    (hold time 1 s); the seconds from each cut to the first reply after it."""
    options = LabOptions(link="udp", more_links=(BACKUP,), encrypt=True)
    extra = ["--keepalive", "0.2", "--hold-time", "1"]
    times: list[float] = []
    with lab_run_tunnels(hosts, options, registry, extra) as ((a, _), _):
        pid = a.proc.pid if a.proc else 0
        ping(hosts.a, OVERLAY[1], count=5, interval=0.05, timeout=1.0)  # the handshake
        for _ in range(cuts):
            thread, result = pinging(hosts, 2.5)
            time.sleep(0.5)
            set_veth(hosts.a, hosts.veth_a, up=False)
            cut = time.perf_counter()
            time.sleep(1.5)
            set_veth(hosts.a, hosts.veth_a, up=True)
            thread.join()
            reply = first_reply(result[0], cut)
            times.append(float("inf") if reply is None else reply - cut)
            deadline = time.perf_counter() + 10
            while not primary_active(pid) and time.perf_counter() < deadline:
                ping(hosts.a, OVERLAY[1], count=1, timeout=0.1)  # traffic, so failover decides
                time.sleep(0.1)
    median, worst = statistics.median(times), max(times)
    met = median <= FAILOVER_MEDIAN and worst <= FAILOVER_WORST
    return [
        f"failover, first reply after each of {cuts} cuts (s): "
        + " ".join(f"{seconds:.2f}" for seconds in times),
        f"  median {median:.3f} (target <= {FAILOVER_MEDIAN}), worst {worst:.3f} "
        f"(target <= {FAILOVER_WORST}): {verdict(met)}",
    ]


@dataclass(frozen=True)
class DuplicateRun:
    """What became of the pings of a duplicate run, and what each link's sim: lost of them
    (from its trace): `sent` packets A's device sent, `got` B's device took in; `offered` and
    `lost` the ping frames each link was given and lost; `both` those lost on both links;
    `status_b` B's status document after the pings."""

    sent: int
    got: int
    offered: tuple[int, int]
    lost: tuple[int, int]
    both: int
    status_b: dict[str, Any]

    @property
    def independent(self) -> float:
        """Pings lost on both links that each link's own loss gives if the two are independent."""
        shares = [lost / offered for lost, offered in zip(self.lost, self.offered, strict=True)]
        return self.sent * shares[0] * shares[1]

    @property
    def elsewhere(self) -> int:
        """Pings that did not reach B's device though a link carried them (0: none)."""
        return self.sent - self.got - self.both

    def budget(self) -> str:
        links = "; ".join(f"link {number} lost {lost} of {offered} ({lost / offered:.1%})"
                          for number, (lost, offered)
                          in enumerate(zip(self.lost, self.offered, strict=True), 1))
        return (f"  loss budget: {links}: {self.independent:.1f} on both if independent, "
                f"{self.both} lost on both by the links' draws, {self.elsewhere} lost elsewhere "
                f"({self.sent - self.got} missing)")


def duplicate_run(hosts: TwoHosts, registry: LinkRegistry, count: int, seeds: Sequence[int],
                  traces: Path) -> DuplicateRun:
    """`count` pings every 2 ms over two `sim:?loss=10%` links with `seeds`, encrypted, the
    duplicate policy; each link's sim: records its decisions in a trace under `traces`."""
    urls = [LOSSY.format(seed) + f"&trace={traces}/link{number}"
            for number, seed in enumerate(seeds, 1)]
    options = LabOptions(link=urls[0], more_links=tuple(urls[1:]), encrypt=True)
    extra = ["--link-policy", "duplicate", "--keepalive", "0.2"]
    with lab_run_tunnels(hosts, options, registry, extra) as ((_, b), _):
        ping(hosts.a, OVERLAY[1], count=5, interval=0.05, timeout=1.0)  # the handshake
        sent_before = link_stats(hosts.a, TUN_NAME)["tx_packets"]
        got_before = link_stats(hosts.b, TUN_NAME)["rx_packets"]
        ping(hosts.a, OVERLAY[1], count=count, interval=0.002, timeout=0.05, size=PING_SIZE)
        time.sleep(0.5)  # the last copies
        sent = link_stats(hosts.a, TUN_NAME)["tx_packets"] - sent_before
        got = link_stats(hosts.b, TUN_NAME)["rx_packets"] - got_before
        path = status_path(b.proc.pid if b.proc else 0, TUN_NAME)
        status_b = (read_one(path) if path else None) or {}
    # the traces are whole once the tunnels stopped; A -> B is each link's `.ab` side
    paths = [f"{traces}/link{number}.ab" for number in range(1, len(seeds) + 1)]
    sizes = Counter(int(record.get("size", 0)) for record in read_trace(paths[0]))
    size = sizes.most_common(1)[0][0]  # the pings' frames
    losses = [losses_of_size(path, size) for path in paths]
    return DuplicateRun(sent, got, (len(losses[0]), len(losses[1])),
                        (sum(losses[0]), sum(losses[1])),
                        sum(map(all, zip(*losses, strict=False))), status_b)


def duplicate(hosts: TwoHosts, registry: LinkRegistry, count: int,
              seeds: Sequence[int]) -> list[str]:
    with tempfile.TemporaryDirectory() as traces:
        run = duplicate_run(hosts, registry, count, seeds, Path(traces))
    share = run.got / run.sent
    exact = run.got <= run.sent and run.elsewhere == 0
    met = share >= DUPLICATE_TARGET and exact
    return [f"duplicate, {run.got} of {run.sent} packets delivered ({share:.2%}, target >= "
            f"{DUPLICATE_TARGET:.1%}; none twice and every one a link carried: {exact}): "
            f"{verdict(met)}", run.budget()]


def measure(args: argparse.Namespace) -> list[str]:
    registry = LinkRegistry(get_plugin_manager())
    lines: list[str] = []
    with two_hosts() as hosts:
        if "balance" in args.cases:
            lines += balance(hosts, registry, args.bytes)
        if "failover" in args.cases:
            lines += failover(hosts, registry, args.cuts)
        if "duplicate" in args.cases:
            lines += duplicate(hosts, registry, args.packets, args.seeds)
    return lines


CASES = ("balance", "failover", "duplicate")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks multilink",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES),
                        help="the cases to run (default all)")
    parser.add_argument("--bytes", type=int, default=12_000_000,
                        help="bytes of each balance transfer (default 12000000)")
    parser.add_argument("--cuts", type=int, default=10, help="failover's cuts (default 10)")
    parser.add_argument("--packets", type=int, default=2000,
                        help="duplicate's pings (default 2000)")
    parser.add_argument("--seeds", type=int, nargs=2, default=DUPLICATE_SEEDS,
                        metavar=("SEED1", "SEED2"), help="duplicate's links' sim: seeds "
                        f"(default {DUPLICATE_SEEDS[0]} {DUPLICATE_SEEDS[1]})")
    args = parser.parse_args(argv)
    status, lines = run_measurements(lambda: measure(args), "network namespaces, TUN")
    if lines is None:
        return status
    print("\n".join(lines), flush=True)
    return verdict_status(lines)


if __name__ == "__main__":
    sys.exit(main())
