"""A stock Debian kernel under qemu (virtme-ng): run one command in it, for kernel features
this machine's kernel may lack (fou, ipip, slip, netem).

The guest sees this machine's files read-only, runs as root in the current directory, and can
write to one shared directory (`rwdir`). The VM runs under TCG (no KVM: it fails on some hosts),
so a boot costs ~30-60 s; run everything that needs the kernel in one boot.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

KERNEL_GLOB = "/boot/vmlinuz-*"
INSTALL_HINT = ("on Debian as root: apt-get install qemu-system-x86 linux-image-amd64 "
                "busybox-static; pip install virtme-ng (./run.sh test does both)")
_TERMINAL_NOISE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class VmResult:
    """How the command in the guest ended: exit code (None: timed out), output, duration."""

    returncode: int | None
    output: str
    seconds: float


def find_vng() -> str | None:
    """virtme-ng's `vng`, from PATH or next to this Python (a virtual environment)."""
    beside = Path(sys.executable).parent / "vng"
    return shutil.which("vng") or (str(beside) if beside.exists() else None)


def find_kernel() -> str | None:
    """The kernel image to boot: $LINKBRIDGE_VM_KERNEL, else the newest /boot/vmlinuz-*."""
    chosen = os.environ.get("LINKBRIDGE_VM_KERNEL")
    if chosen:
        return chosen if os.path.exists(chosen) else None
    images = sorted(glob.glob(KERNEL_GLOB), key=os.path.getmtime)
    return images[-1] if images else None


def vm_problem() -> str | None:
    """Why a VM cannot be started here (one line naming what is missing), or None."""
    if os.geteuid() != 0:
        return "needs root (the guest runs as root on this machine's files)"
    missing = []
    if shutil.which("qemu-system-x86_64") is None:
        missing.append("qemu-system-x86_64 (Debian package qemu-system-x86)")
    if find_kernel() is None:
        missing.append(f"a kernel image {KERNEL_GLOB} (Debian package linux-image-amd64)")
    elif not os.access(find_kernel() or "", os.R_OK):
        missing.append("read access to the kernel image")
    if find_vng() is None:
        missing.append("virtme-ng's vng (pip install virtme-ng)")
    if shutil.which("busybox") is None:
        missing.append("a static busybox (Debian package busybox-static)")
    if missing:
        return f"cannot boot a test VM: missing {', '.join(missing)}; {INSTALL_HINT}"
    return None


class VmRun:
    """A booting or running VM (see start_vm); wait() for its result, or kill() it."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.started = time.monotonic()
        # the console goes to a file, so that a VM nobody waits on yet never blocks on a pipe
        self._output = tempfile.TemporaryFile()  # noqa: SIM115 (closed by wait())
        self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._output,
                                      stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def wait(self, timeout: float) -> VmResult:
        """The result once the guest powers off; after `timeout` seconds the VM is killed and
        `returncode` is None."""
        try:
            code: int | None = self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self._proc.wait()
            code = None
        seconds = time.monotonic() - self.started
        with self._output:
            self._output.seek(0)
            raw = self._output.read()
        return VmResult(code, _TERMINAL_NOISE.sub("", raw.decode(errors="replace")), seconds)

    def kill(self) -> None:
        """Stop qemu and everything virtme-ng started, at once."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signal.SIGKILL)


# A throwaway guest needs no speculative-execution mitigations, and under TCG they cost: the
# same Python loop ran in 0.52 and 0.40 s with them off against 1.16 and 0.89 s with the
# kernel's defaults (retpolines and the rest), and the boot took 26 s instead of 31-38.
# virtme-ng's init runs udev, which loads a driver for every emulated device: under TCG that
# cost ~9 s of a 25 s boot (aesni_intel's self-tests alone 4 s). None of them is of use to a
# throwaway guest on 9p without disks, so the kernel refuses to load them.
UNUSED_MODULES = ("aesni_intel", "ghash_clmulni_intel", "sha1_ssse3", "sha256_ssse3",
                  "sha512_ssse3", "sha512_generic", "crc32_pclmul", "crc32c_intel",
                  "crct10dif_pclmul", "cryptd", "ccp", "kvm", "kvm_amd", "kvm_intel", "ahci",
                  "libata", "scsi_mod", "sr_mod", "sg", "i6300esb", "watchdog", "button",
                  "qemu_fw_cfg", "acpi_cpufreq", "pcc_cpufreq", "powernow_k8", "intel_pmc_bxt",
                  "i2c_i801", "i2c_smbus", "lpc_ich", "evdev", "pcspkr", "psmouse", "serio_raw")
GUEST_KERNEL_ARGS = f"mitigations=off module_blacklist={','.join(UNUSED_MODULES)}"


def start_vm(command: str, rwdir: str | None = None, cpus: int = 2,
             memory: str = "1G", niceness: int = 0) -> VmRun:
    """Boot the kernel to run `command` (a shell line) as root in the current directory, then
    power off. `rwdir` is made writable in the guest at the same path; `niceness` (as nice(1):
    negative is a larger share of the CPU, for root) is qemu's."""
    problem = vm_problem()
    if problem:
        raise RuntimeError(problem)
    vng, kernel = find_vng(), find_kernel()
    assert vng is not None and kernel is not None
    argv = ["nice", "-n", str(niceness)] if niceness else []
    argv += [vng, "--disable-kvm", "--run", kernel, "--user", "root", "--cpus", str(cpus),
            "--memory", memory, "--append", GUEST_KERNEL_ARGS]
    if rwdir:
        argv += ["--rwdir", rwdir]
    argv += ["--exec", command]
    env = dict(os.environ, PATH=f"{Path(vng).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return VmRun(argv, env)


def run_in_vm(command: str, timeout: float, rwdir: str | None = None, cpus: int = 2,
              memory: str = "1G") -> VmResult:
    """start_vm(), then wait up to `timeout` seconds for the result."""
    return start_vm(command, rwdir, cpus, memory).wait(timeout)
