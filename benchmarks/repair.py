"""Loss repair on lossy links: `--repair off` vs `arq` (and `fec`), side by side.

Each case runs its modes at the same time, each in its own pair of lab hosts joined by
linkbridge over the same link (same seed), and prints them side by side:

- `tcp`: one TCP bulk transfer A -> B over `sim:?rate=9600&mtu=256&limit=20` (the link's
  queue holds about 4 s of full frames) per mode and loss: at 0% loss each repair mode's
  goodput >= 0.90x plain (its overhead is honest); at 5%, 10%, 20% random frame loss ARQ
  >= 0.92x, 0.82x, 0.68x of the lossless plain goodput (the ceiling is 1 - loss), plain
  beside it; every repaired transfer intact (plain's unchanged as far as it got).
- `tnc`: the half-duplex radio with TNC timing (1200 bit/s, txdelay 300 ms, txtail 100 ms,
  persist 63, slottime 100 ms, MTU 256; sim.md's Dire Wolf calibration) at 10% loss: a TCP
  transfer of 200 full frames A -> B, ARQ >= 1.5x plain's goodput; the medium's airtime
  per kind of frame (data, retransmission, ACK, small frames such as TCP ACKs, key-ups)
  of each station, and the ceiling the channel leaves.
- `udp`: telemetry, 10 packets/s of 40-byte payloads over 10% loss at 9600 bit/s (3,000
  packets): FEC delivers >= 99%, its median one-way delay <= 10 ms above plain's; ARQ's
  delivery and delay beside it.

`--airtime on` makes a lost frame cost its airtime on the rate links (`loss_airtime=on`, as
on a real channel; the half-duplex radio always does). Exits 1 when a target is missed.
Needs root (network namespaces, TUN devices).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from linkbridge_sim.links import SimLink
from linkbridge_sim.medium_protocol import DEFAULT_PORT
from linkbridge_sim.radiolab import medium_stats

from benchmarks.compression import Line
from benchmarks.running import run_measurements
from benchmarks.slow_queue import DIRE_WOLF
from linkbridge.errors import LinkbridgeError
from linkbridge.lab.layers import tunnel_pair
from linkbridge.lab.probes import StreamResult, TransferResult, tcp_transfer, udp_stream
from linkbridge.lab.run import lab_tunnels
from linkbridge.lab.topology import OVERLAY, UNDERLAY, TwoHosts, two_hosts
from linkbridge.ops.status_data import Repair
from linkbridge.plugin.registry import LinkRegistry, get_plugin_manager
from linkbridge.wire.fec import GROUP
from linkbridge.wire.repair import ACK, AGAIN, DATA, FLAGS, OVERHEAD, PARITY, PREFIX

RATE = 9600
LINK = f"sim:?rate={RATE}&mtu=256&limit=20"
TNC_LINK = f"sim:?{DIRE_WOLF}"
TNC_RATE, TNC_LOSS, TNC_FRAMES, TNC_TARGET = 1200, 0.10, 200, 1.5
TCP_HEADERS = 52  # IPv4 and TCP with timestamps
KINDS = ("data", "retransmission", "ack", "parity", "small", "key-ups")
ARQ_TARGETS = {0.05: 0.92, 0.10: 0.82, 0.20: 0.68}
OVERHEAD_TARGET = 0.90
UDP_LOSS, UDP_RATE, UDP_SIZE = 0.10, 10.0, 40
UDP_DELIVERED, UDP_DELAY = 0.99, 0.010  # FEC's share delivered; its median delay over plain's
CASES = ("tcp", "tnc", "udp")
T = TypeVar("T")


@dataclass
class Target(Line):
    """A line of figures with its target: ok or MISSED."""

    note: str = ""

    def text(self) -> str:
        values = "  ".join(f"{mode} {value:8.1f}" for mode, value in self.figures.items())
        return (f"  {self.case:<30} {values}  {self.unit:<5} ratio {self.ratio:5.2f}  "
                f"{self.target}: {'ok' if self.met else 'MISSED'}"
                + (f"\n    {self.note}" if self.note else ""))


@dataclass
class Lab:
    """One mode's lab: its hosts and the pids of tunnels A and B."""

    mode: str
    hosts: TwoHosts
    pids: tuple[int, int]

    def repair(self) -> tuple[Repair | None, Repair | None]:
        """The repair figures of tunnels A and B (None: no such layer, or no answer)."""
        pair = tunnel_pair(self.pids)
        if pair is None:
            return None, None
        found = [next((layer.repair for layer in tunnel.link_side.stack()
                       if layer.repair is not None), None) for tunnel in pair]
        return found[0], found[1]


@contextlib.contextmanager
def labs(link: str, modes: Sequence[str], registry: LinkRegistry) -> Iterator[list[Lab]]:
    """A pair of lab hosts per mode, tunnels over `link` with `--repair mode`."""
    with contextlib.ExitStack() as stack:
        found = []
        for mode in modes:
            hosts = stack.enter_context(two_hosts())
            a, b = stack.enter_context(lab_tunnels(hosts, link, extra_args=["--repair", mode],
                                                   registry=registry))
            found.append(Lab(mode, hosts, (a.proc.pid if a.proc else 0,
                                            b.proc.pid if b.proc else 0)))
        yield found


def side_by_side(labs: Sequence[Lab], work: Callable[[Lab], T]) -> dict[str, T]:
    """`work` in each lab at the same time; its results by mode."""
    results: dict[str, T] = {}
    threads = [threading.Thread(target=lambda lab=lab: results.update({lab.mode: work(lab)}))
               for lab in labs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    missing = [lab.mode for lab in labs if lab.mode not in results]
    if missing:
        raise LinkbridgeError(f"no result for {', '.join(missing)} (its error is above)")
    return results


def transfers(link: str, modes: Sequence[str], size: int, rate: float,
              registry: LinkRegistry, air: dict[str, Air] | None = None
              ) -> dict[str, TransferResult]:
    """One TCP transfer of `size` bytes A -> B per mode, side by side (each stops after 3x
    its time at `rate` bit/s); into `air`, each mode's airtime by kind (a radio medium's)."""
    def transfer(lab: Lab) -> TransferResult:
        result = tcp_transfer(lab.hosts.b, OVERLAY[1], lab.hosts.a, size, timeout=120.0,
                              limit=size * 8 / rate * 3)
        if air is not None:
            air[lab.mode] = airtime(lab.hosts)
        return result

    with labs(link, modes, registry) as found:
        return side_by_side(found, transfer)


Air = dict[str, dict[str, float]]  # station -> kind of frame -> seconds on the air


def kind(head: str) -> str:
    """The kind of frame the medium's count by head (channel.head()) names."""
    if head == "other":
        return "data"
    first, small = bytes.fromhex(head.split("/")[0]), head.endswith("/small")
    if first[:len(PREFIX)] != PREFIX or len(first) <= len(PREFIX):
        return "small" if small else "data"
    flags = first[len(PREFIX)]
    found = {DATA: "retransmission" if flags & AGAIN else "small" if small else "data",
             ACK: "ack", PARITY: "parity"}
    return found.get(flags & ~FLAGS, "data")


def airtime(hosts: TwoHosts) -> Air:
    """Each station's seconds on the air by kind of frame, from the medium's counters; the
    key-ups are its airtime besides its frames' data (key-up delays and tails)."""
    stations = medium_stats(hosts.a, (UNDERLAY[0], DEFAULT_PORT))["stations"]
    labels = {UNDERLAY[0]: "A", UNDERLAY[1]: "B"}
    found: Air = {}
    for key, counts in stations.items():
        spent = dict.fromkeys(KINDS, 0.0)
        for head, (_, seconds) in counts["heads"].items():
            spent[kind(head)] += seconds
        spent["key-ups"] = counts["airtime"] - sum(spent.values())
        found[labels.get(key.rsplit(":", 1)[0], key)] = spent
    return found


def air_text(air: dict[str, Air]) -> str:
    """The airtime by kind of each mode's stations, one line each."""
    return "\n    ".join(
        f"{mode} air {station}: " + ", ".join(f"{name} {seconds:.1f} s"
                                             for name, seconds in spent.items() if seconds)
        for mode, stations in air.items() for station, spent in sorted(stations.items()))


def intact(found: dict[str, TransferResult]) -> bool:
    """Every repaired transfer arrived whole and unchanged, plain's unchanged as far as it got
    (a plain transfer over a lossy link may stop at its time limit)."""
    return all(result.intact if mode != "off" else result.arrived_intact
               for mode, result in found.items())


def stopped(found: dict[str, TransferResult], every: bool = False) -> str:
    """What each transfer carried in what time (`every`), or only those that stopped early."""
    return ", ".join(f"{mode}: {result.received_bytes} B in {result.seconds:.0f} s"
                     + (f" ({result.stopped})" if result.stopped else "")
                     for mode, result in found.items() if every or result.stopped)


def goodput(result: TransferResult) -> float:
    return result.received_bytes / result.seconds if result.seconds else 0.0


def lossy(link: str, loss: float, seed: int, airtime: bool) -> str:
    return (link + (f"&loss={loss:.0%}" if loss else "") + f"&seed={seed}"
            + ("&loss_airtime=on" if airtime and loss else ""))


def tcp_lines(args: argparse.Namespace, registry: LinkRegistry) -> list[Line]:
    size = int(RATE / 8 * args.seconds * 0.9)  # about `seconds` of line time
    modes = ("off", *args.modes)
    found = transfers(lossy(LINK, 0.0, args.seed, args.airtime), modes, size, RATE, registry)
    plain = goodput(found["off"])
    worst = min(goodput(found[mode]) for mode in args.modes) / plain
    lines: list[Line] = [Target(
        "TCP B/s, loss 0%", {mode: goodput(found[mode]) for mode in modes}, "B/s", worst,
        f"each >= {OVERHEAD_TARGET}x plain, intact",
        worst >= OVERHEAD_TARGET and intact(found))]
    for loss, target in ARQ_TARGETS.items():
        if round(loss * 100) not in args.losses:
            continue
        found = transfers(lossy(LINK, loss, args.seed, args.airtime), modes, size, RATE,
                          registry)
        ratio = goodput(found["arq"]) / plain if "arq" in found else 0.0
        lines.append(Target(
            f"TCP B/s, loss {loss:.0%}", {mode: goodput(found[mode]) for mode in modes}, "B/s",
            ratio, f"arq >= {target}x lossless plain, intact",
            ratio >= target and intact(found), stopped(found)))
    return lines


def tnc_ceiling(registry: LinkRegistry) -> str:
    """The goodput the radio leaves a bulk transfer at TNC_LOSS at most (full frames back to
    back, key-ups and acknowledgements aside), plain and with the repair header."""
    link = registry.create_link(f"sim:127.0.0.1:9?{DIRE_WOLF}")
    assert isinstance(link, SimLink) and link.radio is not None and link.mtu is not None
    frame = link.radio.airtime(link.mtu)
    payload = link.mtu - TCP_HEADERS
    best = {"off": payload, "arq": payload - OVERHEAD}
    return f"ceiling at {TNC_LOSS:.0%} loss: " + ", ".join(
        f"{mode} {(1 - TNC_LOSS) * size / frame:.1f} B/s" for mode, size in best.items())


def tnc_line(args: argparse.Namespace, registry: LinkRegistry) -> Line:
    size = TNC_FRAMES * 200  # 200 full frames of TCP payload
    air: dict[str, Air] = {}
    found = transfers(lossy(TNC_LINK, TNC_LOSS, args.seed, False), ("off", "arq"), size,
                      TNC_RATE, registry, air)
    ratio = goodput(found["arq"]) / goodput(found["off"]) if goodput(found["off"]) else 0.0
    ceiling = (f"{tnc_ceiling(registry)}; the target: "
               f"{TNC_TARGET * goodput(found['off']):.1f} B/s")
    note = "\n    ".join((stopped(found, every=True), ceiling, air_text(air)))
    return Target(f"TNC TCP B/s, loss {TNC_LOSS:.0%}",
                  {mode: goodput(result) for mode, result in found.items()}, "B/s", ratio,
                  f"arq >= {TNC_TARGET}x plain", ratio >= TNC_TARGET and intact(found), note)


def udp_lines(args: argparse.Namespace, registry: LinkRegistry) -> list[Line]:
    link = lossy(LINK, UDP_LOSS, args.seed, args.airtime)
    with labs(link, ("off", "fec", "arq"), registry) as found:
        streams = side_by_side(found, lambda lab: udp_stream(
            lab.hosts.a, lab.hosts.b, OVERLAY[1], args.packets, UDP_RATE, UDP_SIZE))
        figures = {lab.mode: lab.repair() for lab in found}
    delivered = {mode: 100 * stream.delivered for mode, stream in streams.items()}
    median = {mode: 1000 * stream.median for mode, stream in streams.items()}
    above = (median["fec"] - median["off"]) / 1000
    return [
        Target(f"UDP delivered %, loss {UDP_LOSS:.0%}", delivered, "%",
               delivered["fec"] / 100, f"fec >= {UDP_DELIVERED:.0%}",
               delivered["fec"] >= 100 * UDP_DELIVERED,
               udp_note(streams, figures)),
        Target("UDP median one-way delay ms", median, "ms", above * 1000,
               f"fec <= {UDP_DELAY * 1000:.0f} ms above plain", above <= UDP_DELAY)]


def udp_note(streams: dict[str, StreamResult],
             figures: dict[str, tuple[Repair | None, Repair | None]]) -> str:
    """The delay tails, and what the repair cost: A's parity per group and frames sent again,
    the frames B rebuilt."""
    tails = "; ".join(f"{mode}: p95 {1000 * s.quantile(0.95):.0f} ms, max "
                      f"{1000 * s.quantile(1.0):.0f} ms" for mode, s in streams.items())
    (fec_a, fec_b), (arq_a, _) = figures["fec"], figures["arq"]
    costs = (f"fec: parity {fec_a.parity}/{GROUP} at the end, B rebuilt {fec_b.repaired}"
             if fec_a and fec_b else "fec: no status")
    costs += f"; arq: {arq_a.retransmissions} retransmissions" if arq_a else "; arq: no status"
    return f"{tails}\n    {costs}"


def measure(args: argparse.Namespace) -> list[Line]:
    registry = LinkRegistry(get_plugin_manager())
    lines: list[Line] = []
    if "tcp" in args.cases:
        lines += tcp_lines(args, registry)
    if "tnc" in args.cases:
        lines.append(tnc_line(args, registry))
    if "udp" in args.cases:
        lines += udp_lines(args, registry)
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks repair",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES,
                        help="which cases (default all: tcp tnc udp)")
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="line time of each TCP transfer at 9600 bit/s (default 60)")
    parser.add_argument("--losses", nargs="+", type=int, default=[5, 10, 20],
                        choices=[round(loss * 100) for loss in ARQ_TARGETS],
                        help="the tcp case's loss rates in %% beside 0%% (default 5 10 20)")
    parser.add_argument("--packets", type=int, default=3000,
                        help="UDP telemetry packets per mode (default 3000)")
    parser.add_argument("--modes", nargs="+", default=["arq"], choices=["arq", "fec", "auto"],
                        help="repair modes beside plain in the tcp case (default arq)")
    parser.add_argument("--airtime", choices=["off", "on"], default="off",
                        help="loss_airtime= of the 9600 bit/s links (default off)")
    parser.add_argument("--seed", type=int, default=3, help="the sim: links' seed (3)")
    args = parser.parse_args(argv)
    args.airtime = args.airtime == "on"
    status, lines = run_measurements(lambda: measure(args), "network namespaces, TUN")
    if lines is None:
        return status
    print(f"loss repair, seed {args.seed}, loss_airtime {'on' if args.airtime else 'off'} "
          f"(tcp, udp: {LINK}; tnc: {TNC_LINK}); modes side by side, one run each")
    for line in lines:
        print(line.text())
    return 0 if all(line.met for line in lines) else 1


if __name__ == "__main__":
    sys.exit(main())
