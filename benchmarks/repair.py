"""Loss repair on a narrow lossy link: `--repair off` vs `arq` (and `fec`), side by side.

Two lab hosts joined by linkbridge over `sim:?rate=9600&mtu=256&limit=20` (the queue holds
about 4 s of full frames); one TCP bulk transfer A -> B per case, in one run:

- at 0% loss: each repair mode's goodput >= 0.90x plain (its overhead is honest)
- at 5%, 10%, 20% random frame loss: ARQ >= 0.92x, 0.82x, 0.68x of the lossless plain
  goodput (issue 34's targets; the ceiling is 1 - loss), plain beside it
- every transfer intact

Exits 1 when a target is missed. Needs root (network namespaces, TUN devices).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from benchmarks.compression import Line
from benchmarks.running import run_measurements
from linkbridge.lab.probes import tcp_transfer
from linkbridge.lab.run import lab_tunnels
from linkbridge.lab.topology import OVERLAY, TwoHosts, two_hosts
from linkbridge.plugin.registry import LinkRegistry, get_plugin_manager

RATE = 9600
LINK = f"sim:?rate={RATE}&mtu=256&limit=20"
ARQ_TARGETS = {0.05: 0.92, 0.10: 0.82, 0.20: 0.68}
OVERHEAD_TARGET = 0.90


def goodput(hosts: TwoHosts, loss: float, mode: str, size: int, seed: int,
            registry: LinkRegistry) -> tuple[float, bool]:
    """(TCP payload bytes/s A -> B, content intact) over LINK at `loss` with `--repair mode`."""
    link = LINK + (f"&loss={loss:.0%}&seed={seed}" if loss else f"&seed={seed}")
    with lab_tunnels(hosts, link, extra_args=["--repair", mode], registry=registry):
        transfer = tcp_transfer(hosts.b, OVERLAY[1], hosts.a, size, timeout=60.0,
                                limit=size / (RATE / 8) * 6)
    return transfer.received_bytes / transfer.seconds, transfer.intact


def measure(args: argparse.Namespace) -> list[Line]:
    registry = LinkRegistry(get_plugin_manager())
    size = int(RATE / 8 * args.seconds * 0.9)  # about `seconds` of line time
    lines = []
    with two_hosts() as hosts:
        plain, plain_ok = goodput(hosts, 0.0, "off", size, args.seed, registry)
        lossless = {"off": plain}
        intact = plain_ok
        for mode in args.modes:
            lossless[mode], ok = goodput(hosts, 0.0, mode, size, args.seed, registry)
            intact &= ok
        worst = min(lossless[mode] for mode in args.modes) / plain
        lines.append(Line("TCP goodput, loss 0%", lossless, "B/s", worst,
                          f">= {OVERHEAD_TARGET}x plain, intact",
                          worst >= OVERHEAD_TARGET and intact))
        for loss, target in ARQ_TARGETS.items():
            figures = {}
            intact = True
            for mode in ("off", *args.modes):
                figures[mode], ok = goodput(hosts, loss, mode, size, args.seed, registry)
                intact &= ok
            ratio = figures.get("arq", 0.0) / plain
            lines.append(Line(f"TCP goodput, loss {loss:.0%}", figures, "B/s", ratio,
                              f"arq >= {target}x lossless, intact",
                              ratio >= target and intact))
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks repair",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="line time of each TCP transfer (default 60)")
    parser.add_argument("--modes", nargs="+", default=["arq"], choices=["arq", "fec", "auto"],
                        help="repair modes beside plain (default arq)")
    parser.add_argument("--seed", type=int, default=3, help="the sim: links' seed (3)")
    args = parser.parse_args(argv)
    status, lines = run_measurements(lambda: measure(args), "network namespaces, TUN")
    if lines is None:
        return status
    print(f"loss repair over {LINK} (plain vs {' vs '.join(args.modes)}, one run; "
          "ratio: against lossless plain)")
    for line in lines:
        print(line.text())
    return 0 if all(line.met for line in lines) else 1


if __name__ == "__main__":
    sys.exit(main())
