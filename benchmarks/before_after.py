"""Before and after: the tunnels of another commit (`--base`, before) and of this tree (after),
driven by this tree's harness in one run, with socat measured beside each side as the control.

The base commit is installed once in a venv of its own (benchmarks/base_tree.py); both sides'
tunnels are plain processes of their venv's `linkbridge` with the same options. Every round is
one repetition of `compare` over both sides' variants and a socat for each side, each in a lab
of its own, all up at once: the pings of all of them interleaved, then TCP, the 64-byte flood
and TCP over IPv6 of each variant on one side right after the same on the other, the side going
first changing every round; then TCP via `sim:?loss=0.1%` likewise. Per row: each side's median
[min..max], the median of each round's after/before (paired_ratio), and socat's likewise
(about 1.00 when both sides met the same machine: what shows the comparison fair). A row more
than 5% worse in the direction that is worse for it (RSS too) is MISSED, and the exit status is
then 1.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.base_tree import Installed, base_tree, full_commit, this_tree
from benchmarks.compare import (
    EXTRA_METRICS,
    LINKBRIDGE_EXTRA,
    METRICS,
    Metric,
    Sample,
    Settings,
    Setup,
    linkbridge_variant,
    lossy_tcp,
    machine,
    measure_options,
    measure_settings,
    repetition,
    socat_variant,
    spread,
)
from benchmarks.running import run_measurements, verdict_status
from linkbridge.errors import LinkbridgeError
from linkbridge.lab.topology import two_hosts

CONTROL = "socat"
VARIANTS = tuple(LINKBRIDGE_EXTRA)
SIDES = ("before", "after")
WORSE_IF = {"higher": "lower", "lower": "higher"}  # Metric.better -> which way is worse
WORSE_LIMIT = 0.05  # a median more than 5% worse than before misses (issue 27)
Samples = dict[str, dict[str, list[Sample]]]  # side -> variant -> one Sample per round


@dataclass(frozen=True)
class Options:
    base: str
    settings: Settings  # reps: the rounds


def setups(variants: Sequence[str], program: Sequence[str]) -> dict[str, Setup]:
    """The control and `variants`, those running linkbridge by `program`."""
    made: dict[str, Setup] = {CONTROL: socat_variant}
    for name in variants:
        made[name] = functools.partial(linkbridge_variant, extra=LINKBRIDGE_EXTRA[name],
                                       program=program)
    return made


def run(options: Options, trees: dict[str, Installed]) -> Samples:
    """Every round brings both sides' variants up at once, each in a lab of its own, pings
    them all in turn, then measures each variant on one side right after the other side,
    the side going first changing every round."""
    settings = options.settings
    names = (CONTROL, *settings.variants)
    samples: Samples = {side: {name: [] for name in names} for side in SIDES}
    made = {side: setups(settings.variants, trees[side].program) for side in SIDES}
    rng = random.Random(0)
    with contextlib.ExitStack() as labs:
        hosts = {slot(side, name): labs.enter_context(two_hosts())
                 for side in SIDES for name in names}
        for rnd in range(settings.reps):
            order = SIDES if rnd % 2 == 0 else SIDES[::-1]
            measured = repetition(hosts, {slot(side, name): made[side][name]
                                          for name in names for side in order},
                                  settings, rng, rnd)
            for name in settings.variants:
                for side in order:
                    one = {name: measured[slot(side, name)]}
                    lossy_tcp({name: hosts[slot(side, name)]}, one, settings, rnd,
                              trees[side].program, f"{side}: ")
                    measured[slot(side, name)] = one[name]
            for side in SIDES:
                for name in names:
                    samples[side][name].append(measured[slot(side, name)])
    return samples


def slot(side: str, name: str) -> str:
    """The name of one side's variant in a repetition (and in its progress lines)."""
    return f"{name} {side}"


def known_values(samples: list[Sample], key: str) -> list[float]:
    """The figure `key` of each sample that has it."""
    return [value for sample in samples if (value := getattr(sample, key)) is not None]


def ratio(after: float | None, before: float | None) -> float | None:
    return after / before if after is not None and before else None


def paired_ratio(after: list[Sample], before: list[Sample], key: str) -> float | None:
    """The median over the rounds of after/before of figure `key` within each round (None:
    no round has both). Each round measures both sides back to back, so a machine whose speed
    drifts between rounds (this VM's host: the same pure-Python loop takes 0.36 to 0.57 s of
    CPU in five runs in a row) moves both halves of a pair alike, and the median of the
    pairs' ratios leaves the drift out, where the ratio of two medians keeps it."""
    pairs = [ratio(getattr(a, key), getattr(b, key)) for a, b in zip(after, before, strict=True)]
    known = [value for value in pairs if value is not None]
    return statistics.median(known) if known else None


def verdict(metric: Metric, change: float | None) -> str:
    """ok, or MISSED with how much worse, for a checked row; "" for a row that is not."""
    if not metric.better or change is None:
        return ""
    worse = 1 - change if metric.better == "higher" else change - 1
    if worse > WORSE_LIMIT:
        return f"MISSED ({100 * worse:.1f}% worse)"
    return "ok"


def table(samples: Samples, trees: dict[str, Installed]) -> list[str]:
    """One row per figure and variant: each side's median [min..max], after/before, the
    control's after/before of the same figure, which way is worse, the verdict."""
    variants = [name for name in samples["before"] if name != CONTROL]
    rows = [["figure", "variant", f"before ({trees['before'].label})",
             f"after ({trees['after'].label})", "after/before (paired)", f"{CONTROL} a/b",
             "worse if", "verdict"]]
    controls: list[float] = []
    for metric in METRICS + EXTRA_METRICS:
        control = paired_ratio(samples["after"][CONTROL], samples["before"][CONTROL],
                               metric.key)
        if control is not None and metric.better:
            controls.append(control)
        for name in variants:
            before, after = (known_values(samples[side][name], metric.key) for side in SIDES)
            change = paired_ratio(samples["after"][name], samples["before"][name], metric.key)
            rows.append([metric.label, name,
                         spread(before, metric.fmt) if before else "-",
                         spread(after, metric.fmt) if after else "-",
                         f"{change:.2f}" if change is not None else "-",
                         f"{control:.2f}" if control is not None else "-",
                         WORSE_IF.get(metric.better, "not checked"),
                         verdict(metric, change)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
             .rstrip() for row in rows]
    if controls:
        fair = all(abs(value - 1) <= WORSE_LIMIT for value in controls)
        lines.append(f"control: {CONTROL}'s after/before {min(controls):.2f}..{max(controls):.2f} "
                     + ("(within 5%: both sides met the same machine)" if fair else
                        "(beyond 5%: the load changed between the sides' turns; the verdicts "
                        "are not reliable, run again on a quiet machine)"))
    missed = sum("MISSED" in line for line in lines[1:])
    lines.append(f"no median more than {100 * WORSE_LIMIT:.0f}% worse than before: "
                 + (f"MISSED ({missed} row{'s' * (missed > 1)})" if missed else "ok"))
    return lines


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(prog="python -m benchmarks before-after",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True,
                        help="the commit before (e.g. d0ad6da); installed once under "
                             "/var/tmp/linkbridge-base-COMMIT")
    measure_options(parser, "--rounds", VARIANTS, VARIANTS)
    args = parser.parse_args(argv)
    try:
        full_commit(args.base)
    except LinkbridgeError as exc:
        parser.error(str(exc))
    return Options(args.base, measure_settings(parser, args, args.rounds, VARIANTS))


def main(argv: Sequence[str]) -> int:
    options = parse_args(argv)
    trees: dict[str, Installed] = {}

    def work() -> Samples:
        trees.update(before=base_tree(options.base), after=this_tree())
        return run(options, trees)

    status, samples = run_measurements(work, "network namespaces, veth, TUN")
    if samples is None:
        return status
    settings = options.settings
    print(f"before-after: {settings.reps} round(s) x {settings.seconds:g} s, the sides in "
          f"turn (the first changing every round), {settings.pings} pings, MTU {settings.mtu}, "
          "TCP by "
          f"{'iperf3' if settings.use_iperf else 'the lab Python transfer'}; both sides' "
          f"tunnels from their venv's linkbridge; load at the end {os.getloadavg()[0]:.1f}")
    print(f"machine: {machine()}")
    lines = table(samples, trees)
    print("\n".join(lines), flush=True)
    return verdict_status(lines)
