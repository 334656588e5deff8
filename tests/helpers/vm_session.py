"""The test VM's one boot, started as soon as collection shows VM tests, so that the guest's
checks run (in qemu, a process of its own) while the other tiers run on the host: the VM costs
minutes of wall time under TCG. tests/vm's `vm_results` fixture waits for it.

Under pytest-xdist (`./run.sh test` runs `-n`) the controller boots the VM once, when the first
worker reports VM tests among its collected ids, and a thread of the controller writes how the
run ended to `ended.json` in the shared directory; each worker learns that directory from the
controller (`workerinput`) and its `vm_results` fixture waits for that file (`RemoteBoot`).

`./run.sh test` starts the boot earlier still, before the lint step, with this module as a
program (`python -m tests.helpers.vm_session DIR`): it boots, waits and writes `ended.json` in
DIR, and $LINKBRIDGE_VM_DIR=DIR tells pytest to wait for that file instead of booting.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import pytest

from linkbridge.lab.vm import VmResult, start_vm, vm_problem
from tests.helpers import vm_modules
from tests.helpers.tier_gate import under_ci
from tests.helpers.vm_guest_checks import GUEST_MODULES

VM_NICENESS = -15  # qemu's priority over the host tiers' workers (see VmBoot)
VM_CPUS = 1  # one vCPU: under TCG two cost more than they give (the guest run measured on
# this 2-core machine, nothing else running but a nice-19 fuzz: 1 vCPU 222 s of wall time
# and 182 s of CPU, 2 vCPUs 341 s and 310 s)
VM_TIMEOUT = 540.0  # seconds the whole guest run may take (the checks have budgets of their own)
KEY = pytest.StashKey["VmBoot"]()
SHARED_KEY = pytest.StashKey[Path]()
RESULTS_ENV = "LINKBRIDGE_VM_RESULTS"  # a file of earlier results to assert on instead of a boot
WORKER_INPUT = "linkbridge_vm_dir"  # the controller's shared VM directory, handed to each worker
ENDED = "ended.json"  # how the VM run ended (VmResult's fields), written by the controller
RESULTS = "results.json"  # the guest checks' results
EARLY_ENV = "LINKBRIDGE_VM_DIR"  # the directory of a boot run.sh started before pytest


class Boot(Protocol):
    """What `vm_results` needs of a boot: the results file, and a wait for the run's end."""

    results: Path

    def wait(self) -> VmResult: ...


class VmBoot:
    """One background run of every guest check; `results` is the JSON file they write."""

    def __init__(self, shared: Path | None = None) -> None:
        self.shared = shared or Path(tempfile.mkdtemp(prefix="lb-vm-"))
        self.results = self.shared / RESULTS
        modules = self.shared / "modules.zip"
        built = self.shared / "modules.built"
        # the zip is built here while the guest boots (~30 s under TCG): the guest waits for
        # the word that it is complete
        command = (f"until [ -e {built} ]; do sleep 0.2; done; "
                   f"modprobe -a {' '.join(GUEST_MODULES)}; "
                   + vm_modules.guest_command(modules, "tests.helpers.vm_guest_checks",
                                              str(self.results)))
        # The guest's timing checks (netem delay quantiles) run under TCG beside the host tiers'
        # xdist workers: at equal priority four workers left qemu a third of the CPU and the
        # guest stalled for tens of ms (a p99 of 107 ms where netem's delay ends at 50 ms);
        # nice -5 gave qemu the share it had beside one pytest process until the suite grew
        # (a p99 of 99 ms again, once in three runs); at -10 (~9 times a worker's weight) the
        # suite's workers grew denser (tunnels forked from a zygote, more tests) and a p99 of
        # 106 ms came back once; -20 (~87 times) then starved the host's own timing tests
        # (a sim trace's 250 ms windows, failover times); at -15 its weight is ~29 times.
        self._vm = start_vm(command, rwdir=str(self.shared), cpus=VM_CPUS,
                            niceness=VM_NICENESS)
        try:
            vm_modules.build(modules)
        except BaseException:
            self._vm.kill()
            raise
        built.touch()
        self._result: VmResult | None = None
        self._lock = threading.Lock()

    def wait(self) -> VmResult:
        """Block until the guest has powered off (killed VM_TIMEOUT after the start)."""
        with self._lock:
            if self._result is None:
                self._result = self._vm.wait(max(0.0, VM_TIMEOUT - (time.monotonic()
                                                                    - self._vm.started)))
            return self._result

    def remove(self) -> None:
        """Kill the VM if it still runs (an interrupted session), remove its directory."""
        self._vm.kill()
        shutil.rmtree(self.shared, ignore_errors=True)


class RemoteBoot:
    """A worker's view of the controller's boot: waits for `ended.json` in the shared directory."""

    def __init__(self, shared: Path) -> None:
        self.shared = shared
        self.results = shared / RESULTS

    def wait(self) -> VmResult:
        ended = self.shared / ENDED
        deadline = time.monotonic() + VM_TIMEOUT + 120  # the boot starts after collection
        while not ended.exists():
            if time.monotonic() > deadline:
                return VmResult(None, f"no word from the controller's VM run in {ended}", 0.0)
            time.sleep(0.5)
        return VmResult(**json.loads(ended.read_text()))


def earlier_results() -> Path | None:
    """The file $LINKBRIDGE_VM_RESULTS names, to assert on instead of booting (never under CI)."""
    earlier = os.environ.get(RESULTS_ENV)
    return Path(earlier) if earlier and not under_ci() else None


def early_dir() -> Path | None:
    """The directory of the boot run.sh started before pytest ($LINKBRIDGE_VM_DIR), if any."""
    early = os.environ.get(EARLY_ENV)
    return Path(early) if early else None


def is_worker(config: pytest.Config) -> bool:
    """True in a pytest-xdist worker (the controller or a plain run boots the VM)."""
    return hasattr(config, "workerinput")


def wanted(nodeids: Sequence[str]) -> bool:
    """True when VM tests are among `nodeids`, no earlier results replace a boot and a VM can
    run here."""
    return (earlier_results() is None and early_dir() is None and vm_problem() is None
            and any(nodeid.startswith("tests/vm/") for nodeid in nodeids))


def start_if_needed(session: pytest.Session) -> None:
    """In a run without workers: start the boot when VM tests were collected."""
    if not is_worker(session.config) and wanted([item.nodeid for item in session.items]):
        session.config.stash[KEY] = VmBoot()


def shared_dir(config: pytest.Config) -> Path:
    """The controller's VM directory, made on first use (its path goes to every worker)."""
    if SHARED_KEY not in config.stash:
        config.stash[SHARED_KEY] = Path(tempfile.mkdtemp(prefix="lb-vm-"))
    return config.stash[SHARED_KEY]


def hand_to_worker(config: pytest.Config, workerinput: dict[str, Any]) -> None:
    """Controller: tell a starting worker where the VM's results will be."""
    workerinput[WORKER_INPUT] = str(shared_dir(config))


def start_for_workers(config: pytest.Config, nodeids: Sequence[str]) -> None:
    """Controller: boot once, at the first worker's collection that holds VM tests; a thread
    writes `ended.json` when the run ends (or the boot could not start)."""
    if KEY in config.stash or not wanted(nodeids):
        return
    shared = shared_dir(config)
    ended = shared / ENDED
    try:
        boot = VmBoot(shared)
    except Exception:  # the workers' VM tests fail with it instead of waiting in vain
        write_ended(ended, VmResult(None, traceback.format_exc(), 0.0))
        raise
    config.stash[KEY] = boot
    threading.Thread(target=lambda: write_ended(ended, boot.wait()), daemon=True,
                     name="vm-wait").start()


def write_ended(path: Path, result: VmResult) -> None:
    """The VM run's end for the workers; nothing when the session ended first (and removed
    the directory)."""
    if not path.parent.exists():
        return
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps({"returncode": result.returncode, "output": result.output,
                                   "seconds": result.seconds}))
    partial.rename(path)


def boot_of(config: pytest.Config) -> Boot | None:
    """This process's boot, or in a worker the controller's, or run.sh's early one (None when
    there is none)."""
    early = early_dir()
    if early is not None:
        return RemoteBoot(early)
    if is_worker(config):
        shared = config.workerinput.get(WORKER_INPUT)  # type: ignore[attr-defined]
        return RemoteBoot(Path(shared)) if shared else None
    return config.stash.get(KEY, None)


def finish(config: pytest.Config) -> None:
    boot = config.stash.get(KEY, None)
    if boot is not None:
        boot.remove()
    if SHARED_KEY in config.stash:
        shutil.rmtree(config.stash[SHARED_KEY], ignore_errors=True)


def main(argv: Sequence[str]) -> int:
    """`python -m tests.helpers.vm_session DIR`: boot now, write `ended.json` in DIR when the
    guest is done. Nothing happens where no VM can run (the VM tests say why); SIGTERM (run.sh
    ending first) kills the VM."""
    if len(argv) != 1:
        print("usage: python -m tests.helpers.vm_session DIR", file=sys.stderr)
        return 2
    shared = Path(argv[0])
    if earlier_results() is not None or vm_problem() is not None:
        return 0
    try:
        boot = VmBoot(shared)
    except Exception:
        write_ended(shared / ENDED, VmResult(None, traceback.format_exc(), 0.0))
        return 1

    def stop(_signal: int, _frame: Any) -> None:
        boot.remove()
        sys.exit(1)

    signal.signal(signal.SIGTERM, stop)
    write_ended(shared / ENDED, boot.wait())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
