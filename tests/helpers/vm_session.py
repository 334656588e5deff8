"""The test VM's one boot, started as soon as collection shows VM tests, so that the guest's
checks run (in qemu, a process of its own) while the other tiers run on the host: the VM costs
minutes of wall time under TCG. tests/vm's `vm_results` fixture waits for it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from linkbridge.lab.vm import VmResult, start_vm, vm_problem
from tests.helpers import vm_modules
from tests.helpers.tier_gate import under_ci
from tests.helpers.vm_guest_checks import GUEST_MODULES

VM_TIMEOUT = 540.0  # seconds the whole guest run may take (the checks have budgets of their own)
KEY = pytest.StashKey["VmBoot"]()
RESULTS_ENV = "LINKBRIDGE_VM_RESULTS"  # a file of earlier results to assert on instead of a boot


class VmBoot:
    """One background run of every guest check; `results` is the JSON file they write."""

    def __init__(self) -> None:
        self.shared = Path(tempfile.mkdtemp(prefix="lb-vm-"))
        self.results = self.shared / "results.json"
        modules = self.shared / "modules.zip"
        vm_modules.build(modules)
        command = (f"modprobe -a {' '.join(GUEST_MODULES)}; "
                   + vm_modules.guest_command(modules, "tests.helpers.vm_guest_checks",
                                              str(self.results)))
        self._vm = start_vm(command, rwdir=str(self.shared))
        self._result: VmResult | None = None

    def wait(self) -> VmResult:
        """Block until the guest has powered off (killed VM_TIMEOUT after the start)."""
        if self._result is None:
            self._result = self._vm.wait(max(0.0, VM_TIMEOUT - (time.monotonic()
                                                                - self._vm.started)))
        return self._result

    def remove(self) -> None:
        """Kill the VM if it still runs (an interrupted session), remove its directory."""
        self._vm.kill()
        shutil.rmtree(self.shared, ignore_errors=True)


def earlier_results() -> Path | None:
    """The file $LINKBRIDGE_VM_RESULTS names, to assert on instead of booting (never under CI)."""
    earlier = os.environ.get(RESULTS_ENV)
    return Path(earlier) if earlier and not under_ci() else None


def start_if_needed(session: pytest.Session) -> None:
    """Start the boot when VM tests were collected, no earlier results are to be used instead
    and a VM can run here."""
    if earlier_results() is None and vm_problem() is None and any(
            item.get_closest_marker("vm") for item in session.items):
        session.config.stash[KEY] = VmBoot()


def boot_of(config: pytest.Config) -> VmBoot | None:
    return config.stash.get(KEY, None)


def finish(config: pytest.Config) -> None:
    boot = boot_of(config)
    if boot is not None:
        boot.remove()
