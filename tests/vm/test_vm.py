"""Kernel features this machine may lack, checked in one boot of a stock Debian kernel VM.

The VM runs tests/helpers/vm_guest_checks.py once for the whole session (a boot under TCG
costs ~30-60 s, a Python start inside ~30 s); each test here asserts on one check's recorded
result and prints its figures. Skips with the reason where no VM can be started (no root, qemu,
kernel image or virtme-ng).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest

from linkbridge.lab.vm import run_in_vm, vm_problem
from tests.helpers.vm_guest_checks import CHECKS, GUEST_MODULES, NETEM_CASES, sim_url_config

pytestmark = pytest.mark.vm
VM_TIMEOUT = 540.0
LOSS_TOLERANCE = 0.005  # 0.5 percentage points
DELAY_TOLERANCE_MS = 1.0
SIM_SEED = 20260101
SIM_PACKETS = 100_000


@pytest.fixture(scope="session")
def vm_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Boot once, run every guest check, return the results by check name."""
    reason = vm_problem()
    if reason:
        pytest.skip(reason)
    shared = tmp_path_factory.mktemp("vm")
    results = shared / "results.json"
    command = (f"modprobe -a {' '.join(GUEST_MODULES)}; "
               f"{sys.executable} -m tests.helpers.vm_guest_checks {results}")
    run = run_in_vm(command, timeout=VM_TIMEOUT, rwdir=str(shared))
    if not results.exists():
        ended = "timed out" if run.returncode is None else f"exited {run.returncode}"
        pytest.fail(f"the VM run {ended} after {run.seconds:.0f} s without results:\n"
                    f"{run.output[-4000:]}")
    print(f"VM run: {run.seconds:.0f} s")
    return {result["name"]: result for result in json.loads(Path(results).read_text())}


@pytest.mark.parametrize("name", list(CHECKS))
def test_in_vm(vm_results: dict[str, dict[str, Any]], name: str) -> None:
    result = vm_results[name]
    print(f"{name} ({result['seconds']} s): {json.dumps(result['figures'])}")
    if result.get("skipped"):
        pytest.skip(result["detail"])
    assert result["ok"], result["detail"]


def sim_statistics(url: str, count: int) -> tuple[float, float]:
    """Loss fraction and mean delay (ms) the sim model gives `count` packets, seeded."""
    from linkbridge_sim.decisions import RandomDecisions
    from linkbridge_sim.impairment import Impairment

    config = sim_url_config(url)
    impairment = Impairment(config, RandomDecisions(config, random.Random(SIM_SEED)))
    lost, delays = 0, []
    for index in range(count):
        now = index * 1e-5
        outcome = impairment.offer(bytes(64), now)
        if outcome.releases:
            delays.append(outcome.releases[0].at - now)
        else:
            lost += 1
    return lost / count, 1000 * sum(delays) / max(1, len(delays))


@pytest.mark.parametrize("case", list(NETEM_CASES))
def test_sim_agrees_with_netem(vm_results: dict[str, dict[str, Any]], case: str) -> None:
    """The sim model and the kernel's netem, same parameters: loss within 0.5 pp, mean delay
    within 1 ms."""
    netem_run = vm_results["netem"]
    assert netem_run["ok"], netem_run["detail"]
    netem = netem_run["figures"][case]
    url, count, _interval = NETEM_CASES[case]
    # the model is cheap: a large sample keeps its own sampling error out of the comparison
    sim_loss, sim_delay_ms = sim_statistics(url, max(count, SIM_PACKETS))
    print(f"{case}: tc netem {' '.join(netem['netem'])}: loss {netem['loss']:.2%}, mean delay "
          f"{netem['mean_delay_ms']:.3f} ms over {count} packets; sim {url}: loss "
          f"{sim_loss:.2%}, mean delay {sim_delay_ms:.3f} ms")
    assert abs(sim_loss - netem["loss"]) <= LOSS_TOLERANCE
    assert abs(sim_delay_ms - netem["mean_delay_ms"]) <= DELAY_TOLERANCE_MS
