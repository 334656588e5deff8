"""`benchmarks before-after`'s plumbing (no timings): the base commit installed once under a
cache directory and reused, and tunnels started by that install's `linkbridge` carrying
packets in the lab, not by the test suite's launcher."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from benchmarks import base_tree, before_after
from benchmarks.compare import linkbridge_variant
from linkbridge.errors import LinkbridgeError
from linkbridge.lab.probes import ping
from linkbridge.lab.topology import TwoHosts


def fake_install(root: str) -> None:
    """A venv whose `linkbridge` notes each start in `root`/started, then runs this one's."""
    bin_dir = os.path.join(root, "venv", "bin")
    os.makedirs(bin_dir)
    script = os.path.join(bin_dir, "linkbridge")
    real = os.path.join(os.path.dirname(sys.executable), "linkbridge")
    with open(script, "w") as file:
        file.write(f"#!/bin/sh\necho started >> {root}/started\nexec {real} \"$@\"\n")
    os.chmod(script, os.stat(script).st_mode | stat.S_IXUSR)


def test_the_base_is_installed_once_and_its_tunnels_carry_packets(
        lab: TwoHosts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    installs: list[str] = []

    def install(root: str) -> None:
        installs.append(root)
        fake_install(root)

    monkeypatch.setattr(base_tree, "install", install)
    with pytest.raises(LinkbridgeError, match="no such commit"):
        base_tree.base_tree("no-such-commit", str(tmp_path))
    with pytest.raises(SystemExit) as stopped:  # the command line's error, before any lab
        before_after.parse_args(["--base", "no-such-commit"])
    assert stopped.value.code == 2
    os.makedirs(tmp_path / f"linkbridge-base-{base_tree.full_commit('HEAD')[:12]}" / "stale")
    installed = base_tree.base_tree("HEAD", str(tmp_path))
    root = installs[0]
    assert not os.path.exists(os.path.join(root, "stale"))  # a half-made copy is made again
    assert os.path.isfile(os.path.join(root, "tree", "pyproject.toml"))
    assert base_tree.base_tree("HEAD", str(tmp_path)) == installed and len(installs) == 1
    with linkbridge_variant(lab, 1400, program=installed.program) as running:
        assert ping(lab.a, running.destination, count=3, interval=0.01).received == 3
    with open(os.path.join(root, "started")) as started:
        assert started.read().split() == ["started", "started"]  # A and B, by its program
