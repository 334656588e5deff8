"""The tier gate (tests/helpers/tier_gate.py) shown on generated test directories: under CI an
unlisted skip in a gated tier fails the run, a listed one does not, and the summary ends the
output with one line per tier."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import tier_gate

ROOT = Path(__file__).resolve().parents[2]

PASSING = "def test_passes():\n    assert 1 + 1 == 2\n"
SKIPPING = ("import pytest\n\ndef test_needs_something():\n"
            "    pytest.skip('needs a thing this machine lacks')\n")


def run_pytest(tmp_path: Path, files: dict[str, str], ci: bool, expected: str = "",
               *options: str) -> subprocess.CompletedProcess[str]:
    """pytest with only the tier gate (and `options`) on a tree of `files` (path -> source), in
    a subprocess."""
    for relative, source in files.items():
        path = tmp_path / "suite" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    listed = tmp_path / "expected_skips.txt"
    listed.write_text(expected)
    env = dict(os.environ, PYTHONPATH=str(ROOT), LINKBRIDGE_EXPECTED_SKIPS=str(listed),
               CI="true" if ci else "")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.helpers.tier_gate", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path / "suite"), "-c", os.devnull, *options,
         str(tmp_path / "suite")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False)


def test_ci_fails_when_an_integration_test_skips(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, {"unit/test_a.py": PASSING,
                                 "integration/test_b.py": SKIPPING}, ci=True)
    assert done.returncode == 1, done.stdout
    last = done.stdout.strip().splitlines()
    assert "CI: not allowed to skip: integration/test_b.py::test_needs_something: needs a thing" \
        in done.stdout
    assert last[-1].startswith("CI: FAILED, 1 integration/reliability/VM test(s) skipped")
    assert "tier unit: 1 run, 0 skipped, 0 failed" in last
    assert "tier integration: 0 run, 1 skipped, 0 failed" in last


def test_under_xdist_the_controller_counts_and_fails(tmp_path: Path) -> None:
    """./run.sh test runs pytest-xdist workers: their reports reach the gate in the controller,
    which counts them by tier and fails CI on an unlisted skip."""
    files = {"unit/test_a.py": PASSING, "integration/test_b.py": SKIPPING,
             "integration/test_c.py": PASSING, "reliability/test_d.py": SKIPPING}
    done = run_pytest(tmp_path, files, True, "reliability/test_d.py | by design\n",
                      "-n", "2", "--dist", "loadfile")
    assert done.returncode == 1, done.stdout
    last = done.stdout.strip().splitlines()
    assert "tier unit: 1 run, 0 skipped, 0 failed" in last
    assert "tier integration: 1 run, 1 skipped, 0 failed" in last
    assert "tier reliability: 0 run, 1 skipped, 0 failed" in last
    assert "expected skip: reliability/test_d.py::test_needs_something: by design" in last
    assert last[-1].startswith("CI: FAILED, 1 integration/reliability/VM test(s) skipped")


def test_a_developer_run_may_skip(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, {"integration/test_b.py": SKIPPING}, ci=False)
    assert done.returncode == 0, done.stdout
    assert done.stdout.strip().splitlines()[-1] == (
        "skipped: integration/test_b.py::test_needs_something: needs a thing this machine lacks")


def test_unit_skips_and_listed_skips_pass_ci(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, {"unit/test_a.py": SKIPPING, "reliability/test_c.py": SKIPPING,
                                 "integration/test_b.py": PASSING}, ci=True,
                      expected="reliability/test_c.py | by design: shown in the summary\n")
    assert done.returncode == 0, done.stdout
    assert ("expected skip: reliability/test_c.py::test_needs_something: by design: shown in "
            "the summary") in done.stdout
    assert "tier integration: 1 run, 0 skipped, 0 failed" in done.stdout
    assert "tier reliability: 0 run, 1 skipped, 0 failed" in done.stdout


def test_a_failure_still_counts_and_fails(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, {"integration/test_b.py": "def test_x():\n    assert False\n"},
                      ci=True)
    assert done.returncode == 1
    assert "tier integration: 1 run, 0 skipped, 1 failed" in done.stdout


def test_the_vm_tier_cannot_be_listed(tmp_path: Path) -> None:
    listed = tmp_path / "listed.txt"
    listed.write_text("tests/vm/test_vm.py | no qemu here\n")
    with pytest.raises(pytest.UsageError, match="VM tier may not skip"):
        tier_gate.load_expected(listed)


def test_the_projects_expected_skips_file_is_valid() -> None:
    expected = tier_gate.load_expected(tier_gate.DEFAULT_EXPECTED)
    assert expected and all(reason for reason in expected.values())
    for nodeid in expected:
        assert (ROOT / nodeid.split("::")[0]).exists(), nodeid
