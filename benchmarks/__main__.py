"""Dispatch `python -m benchmarks SUBCOMMAND [ARGS]` to a module with main(argv) -> int."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

DEFAULT = "compare"
SUBCOMMANDS = {
    "compare": ("benchmarks.compare", "bare veth vs the socat variant vs linkbridge over udp:"),
    "serial-latency": ("benchmarks.serial_latency",
                       "per-packet overhead of linkbridge over a paced pty pair"),
    "slip-codec": ("benchmarks.slip_codec", "SLIP codec throughput"),
    "serial-goodput": ("benchmarks.serial_goodput", "goodput of the serial: link"),
    "multilink": ("benchmarks.multilink",
                  "several links per peer: balance vs one link, failover time, duplicate"),
    "compression": ("benchmarks.compression",
                    "header compression at 9600 bit/s: off vs vj vs auto"),
    "encryption": ("benchmarks.encryption",
                   "encrypt layer: bytes and CPU per packet, TCP and handshake vs plain"),
    "slow-queue": ("benchmarks.slow_queue",
                   "the link-aware queue over the Dire Wolf-calibrated radio: off vs on"),
    "repair": ("benchmarks.repair",
               "loss repair: TCP at 0-20% loss, half-duplex TNC, UDP telemetry: off vs arq, fec"),
    "before-after": ("benchmarks.before_after",
                     "another commit's tunnels (--base) vs this tree's, one harness; 5% limit"),
    "offload-cpu": ("benchmarks.offload_cpu",
                    "the offload path's CPU per GB and per packet: this tree, --base, bare relay"),
    "syscalls": ("benchmarks.syscalls",
                 "system calls per ping round trip and per 64 KiB: socat, bare, lb, offload"),
    "peers": ("benchmarks.peers", "a multipoint hub with 100 peers vs 1 peer: packet rates, "
                                  "memory, threads"),
    "fuzz": ("benchmarks.fuzz", "coverage-guided fuzzing of every decoder a link's bytes reach"),
}


def usage() -> str:
    lines = ["usage: python -m benchmarks [SUBCOMMAND] [ARGS]  (default: compare)", ""]
    lines += [f"  {name:<16}{text}" for name, (_module, text) in SUBCOMMANDS.items()]
    lines += ["", "`python -m benchmarks SUBCOMMAND --help` shows a subcommand's options."]
    return "\n".join(lines)


def load(name: str) -> Callable[[Sequence[str]], int] | None:
    """The subcommand's main(), or None when its module is not there (yet)."""
    module_name = SUBCOMMANDS[name][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        return None
    entry: Callable[[Sequence[str]], int] = module.main
    return entry


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    if args and args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if args and args[0] in SUBCOMMANDS:
        name = args.pop(0)  # its own arguments follow, positional ones too
    elif args and not args[0].startswith("-"):
        print(f"benchmarks: error: unknown subcommand {args[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    else:
        name = DEFAULT
    entry = load(name)
    if entry is None:
        print(f"benchmarks: error: subcommand {name!r} is not available in this tree",
              file=sys.stderr)
        return 2
    return entry(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
