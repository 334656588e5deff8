"""The VM harness says exactly what is missing instead of failing obscurely."""

from __future__ import annotations

import pytest

from linkbridge.lab import vm


def test_names_every_missing_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr("shutil.which", lambda name: None)
    monkeypatch.setattr("sys.executable", "/nonexistent/bin/python")
    monkeypatch.setenv("LINKBRIDGE_VM_KERNEL", "/nonexistent/vmlinuz")
    problem = vm.vm_problem()
    assert problem is not None
    for piece in ("qemu-system-x86", "linux-image-amd64", "virtme-ng", "busybox-static"):
        assert piece in problem
    with pytest.raises(RuntimeError, match="cannot boot a test VM"):
        vm.run_in_vm("true", timeout=1)


def test_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert "needs root" in (vm.vm_problem() or "")


def test_terminal_noise_is_stripped() -> None:
    assert vm._TERMINAL_NOISE.sub("", "\x1b[?25lok\r\x1b[0m\n") == "ok\n"


