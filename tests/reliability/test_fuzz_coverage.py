"""Coverage-guided fuzzing (`python -m benchmarks fuzz`, atheris) of every decoder a link's
bytes reach: each target runs on its seeds and a few hundred inputs here (the figures come from
the command's longer runs), and a decoder that raises is caught.

With `--long` every target runs on 1,000,000 inputs (hours: two at a time).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.fuzz import all_targets

ROOT = Path(__file__).resolve().parents[2]
pytest.importorskip("atheris", reason="atheris is not installed (pip install -e '.[fuzz]')")


def fuzz(*args: str, timeout: float | None, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "benchmarks", "fuzz", *args], cwd=ROOT,
                          text=True, capture_output=True, timeout=timeout, check=False,
                          env=env)


def test_every_target_runs_its_budget_without_a_failure(long_run: bool) -> None:
    runs = 1_000_000 if long_run else 300
    result = fuzz("--runs", str(runs), "--jobs", "2", timeout=None if long_run else 150)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()[1:]
            if line.strip()}
    assert sorted(rows) == sorted(target.name for target in all_targets())
    for name, (inputs, _per_second, coverage, _features, _corpus, verdict) in rows.items():
        assert verdict == "ok", name
        assert int(inputs) >= runs, (name, inputs)
        assert int(coverage) > 20, (name, coverage)  # the seeds reach into the decoder


def test_a_decoder_that_raises_is_reported_with_the_input(tmp_path: Path) -> None:
    """The VJ decompressor with the fuzzer's first find put back (a packet over 65535 bytes
    raised OverflowError): the run fails, names the exception, and saves the input, which
    fails again on that code and passes on the fixed one."""
    (tmp_path / "sitecustomize.py").write_text(
        "import linkbridge.wire.compress.vj as vj\nvj.MAX_PACKET = 1 << 30\n")
    broken = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = fuzz("vj", "--runs", "5000", "--keep", str(tmp_path / "runs"), timeout=60,
                  env=broken)
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(r"^vj .* FAILED$", result.stdout, re.MULTILINE)
    assert "OverflowError" in result.stdout
    saved = re.search(r"input saved as (\S+);", result.stdout)
    assert saved and Path(saved.group(1)).is_file(), result.stdout
    again = [sys.executable, "-m", "benchmarks.fuzz_worker", "vj", saved.group(1)]
    assert subprocess.run(again, cwd=ROOT, capture_output=True, env=broken, timeout=60,
                          check=False).returncode != 0
    assert subprocess.run(again, cwd=ROOT, capture_output=True, timeout=60,
                          check=False).returncode == 0
