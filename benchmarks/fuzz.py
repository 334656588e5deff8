"""Coverage-guided fuzzing of every decoder that bytes from a link reach, under atheris.

    python -m benchmarks fuzz [TARGET...] [--seconds S | --runs N | --long] [--jobs J]
                              [--seed N] [--keep DIR] [--list]

Each target (fuzz_targets.py, fuzz_secure.py) runs in its own process (fuzz_worker.py) for the
budget: `--seconds` each (default 10), `--runs` inputs each, or `--long`, 1,000,000 inputs each.
It starts from seeds built with the project's encoders; any outcome a target does not allow
(an exception other than its decoder's documented one, a failed check, a hang of more than
`--timeout` seconds on one input) stops it and is reported with the input, saved. Prints one
line per target (inputs run, inputs/s, coverage: edges and features, corpus); exit status 1
when any target failed, 2 for a bad argument.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks import fuzz_secure, fuzz_targets
from benchmarks.fuzz_targets import Target

LONG_RUNS = 1_000_000
DEFAULT_SECONDS = 10.0
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ("crash-", "timeout-", "oom-", "leak-", "slow-unit-")
_STAT = re.compile(r"^stat::(\w+):\s+(\d+)", re.MULTILINE)
_PROGRESS = re.compile(r"cov: (\d+) ft: (\d+) corp: (\d+)")


def all_targets() -> tuple[Target, ...]:
    return (*fuzz_targets.TARGETS, *fuzz_secure.TARGETS)


def target_named(name: str) -> Target:
    for target in all_targets():
        if target.name == name:
            return target
    raise KeyError(name)


@dataclass
class Outcome:
    """What one target's run gave."""

    target: str
    inputs: int
    per_second: int
    coverage: int  # edges of the instrumented code
    features: int
    corpus: int
    failure: str | None  # what went wrong, with the saved input: None when the run passed


def libfuzzer_options(target: Target, args: argparse.Namespace, workdir: Path) -> list[str]:
    budget = (f"-runs={LONG_RUNS if args.long else args.runs}" if args.long or args.runs
              else f"-max_total_time={max(1, round(args.seconds))}")
    return [budget, f"-seed={args.seed}", f"-max_len={target.max_len}",
            f"-timeout={args.timeout}", "-rss_limit_mb=2048", "-print_final_stats=1",
            f"-artifact_prefix={workdir}/", str(workdir / "corpus"), str(workdir / "seeds")]


def prepare(target: Target, workdir: Path) -> None:
    """The seed corpus, written where libFuzzer reads it, and the directory for new finds."""
    (workdir / "corpus").mkdir(parents=True, exist_ok=True)
    seeds = workdir / "seeds"
    seeds.mkdir(exist_ok=True)
    for index, seed in enumerate(target.seeds()):
        (seeds / f"seed-{index:03d}").write_bytes(seed)


def start(target: Target, args: argparse.Namespace, workdir: Path) -> subprocess.Popen[str]:
    prepare(target, workdir)
    command = [sys.executable, "-m", "benchmarks.fuzz_worker", target.name,
               *libfuzzer_options(target, args, workdir)]
    log = (workdir / "log").open("w")
    return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL)


def outcome(target: Target, returncode: int, workdir: Path) -> Outcome:
    log = (workdir / "log").read_text(errors="replace")
    stats = {name: int(value) for name, value in _STAT.findall(log)}
    progress = _PROGRESS.findall(log)
    coverage, features, corpus = map(int, progress[-1]) if progress else (0, 0, 0)
    failure = None
    if returncode != 0 or not stats:
        failure = failure_text(target, log, workdir, returncode)
    return Outcome(target.name, stats.get("number_of_executed_units", 0),
                   stats.get("average_exec_per_sec", 0), coverage, features, corpus, failure)


def failure_text(target: Target, log: str, workdir: Path, returncode: int) -> str:
    """The Python traceback (or libFuzzer's reason), the input saved, how to run it again."""
    lines = log.splitlines()
    start_at = next((i for i, line in enumerate(lines) if "Uncaught Python exception" in line),
                    None)
    if start_at is not None:
        excerpt = lines[start_at + 1:start_at + 40]
        end = next((i for i, line in enumerate(excerpt) if line.startswith("==")), len(excerpt))
        excerpt = excerpt[:end]
    else:
        excerpt = [line for line in lines if "ERROR:" in line or "Error" in line][-5:] \
            or lines[-10:]
    saved = sorted(path for path in workdir.iterdir() if path.name.startswith(ARTIFACTS))
    where = (f"input saved as {saved[0]}; run it again: python -m benchmarks.fuzz_worker "
             f"{target.name} {saved[0]}" if saved else f"exit status {returncode}, no input saved")
    return "\n".join([*excerpt, where, f"log: {workdir / 'log'}"])


def run_targets(targets: Sequence[Target], args: argparse.Namespace) -> list[Outcome]:
    """Run the targets, `args.jobs` at once; each one's work directory is removed when it
    passed (kept under --keep, and on a failure)."""
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="linkbridge-fuzz-"))
    outcomes: dict[str, Outcome] = {}
    waiting = list(targets)
    running: list[tuple[Target, Path, subprocess.Popen[str]]] = []
    while waiting or running:
        while waiting and len(running) < args.jobs:
            target = waiting.pop(0)
            workdir = base / target.name
            running.append((target, workdir, start(target, args, workdir)))
        done = [entry for entry in running if entry[2].poll() is not None]
        if not done:  # the first to end frees its slot (not the first started)
            time.sleep(POLL)
            continue
        running.remove(done[0])
        target, workdir, process = done[0]
        result = outcome(target, process.wait(), workdir)
        outcomes[target.name] = result
        print(line(result), flush=True)
        if result.failure is None and not args.keep:
            shutil.rmtree(workdir)
    if not args.keep and not any(base.iterdir()):
        base.rmdir()
    return [outcomes[target.name] for target in targets]


POLL = 0.2  # seconds between looks at the running targets

HEADER = f"{'target':<15}{'inputs':>10}{'inputs/s':>10}{'cov':>7}{'ft':>7}{'corpus':>8}  result"


def line(result: Outcome) -> str:
    verdict = "ok" if result.failure is None else "FAILED"
    return (f"{result.target:<15}{result.inputs:>10}{result.per_second:>10}{result.coverage:>7}"
            f"{result.features:>7}{result.corpus:>8}  {verdict}")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks fuzz",
        description="Coverage-guided fuzzing (atheris) of every decoder a link's bytes reach.")
    parser.add_argument("targets", nargs="*", metavar="TARGET", help="default: all (--list)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--seconds", type=float, default=DEFAULT_SECONDS,
                        help=f"run each target this long (default {DEFAULT_SECONDS:g})")
    budget.add_argument("--runs", type=int, help="run each target on this many inputs")
    budget.add_argument("--long", action="store_true",
                        help=f"run each target on {LONG_RUNS:,} inputs")
    parser.add_argument("--jobs", type=int, default=1, help="targets run at once (default 1)")
    parser.add_argument("--seed", type=int, default=1, help="libFuzzer's seed (default 1)")
    parser.add_argument("--timeout", type=int, default=10,
                        help="seconds one input may take before it counts as a hang (default 10)")
    parser.add_argument("--keep", metavar="DIR",
                        help="keep each target's corpus, log and failing inputs in DIR/TARGET "
                             "(a later run goes on from the corpus)")
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    targets = all_targets()
    if args.list:
        for target in targets:
            print(f"{target.name:<15}{target.reaches}\n{'':<15}allowed: {target.allowed}")
        return 0
    names = {target.name for target in targets}
    unknown = [name for name in args.targets if name not in names]
    if unknown:
        print(f"benchmarks: error: unknown fuzz target {unknown[0]!r} (choose from "
              f"{', '.join(sorted(names))})", file=sys.stderr)
        return 2
    if importlib.util.find_spec("atheris") is None:
        print("benchmarks: error: atheris is not installed: pip install -e '.[fuzz]' "
              "(run.sh's install does it)", file=sys.stderr)
        return 1
    chosen = [target for target in targets if not args.targets or target.name in args.targets]
    print(HEADER, flush=True)
    failed = [result for result in run_targets(chosen, args) if result.failure is not None]
    for result in failed:
        print(f"\n{result.target}: FAILED\n{result.failure}")
    return 1 if failed else 0
