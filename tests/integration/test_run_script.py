"""run.sh as a new user meets it: the first install prints one progress line, not the
installers' warnings (which go to a log shown only when the install fails)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOISY_PIP = """#!/bin/sh
echo "SetuptoolsDeprecationWarning: License classifiers are deprecated." >&2
echo "!!" >&2
echo "Successfully installed linkbridge"
[ -z "$FAIL_INSTALL" ]
"""


def fake_checkout(tmp_path: Path) -> Path:
    """run.sh beside a .venv whose python is a noisy stand-in for pip (no network needed)."""
    shutil.copy(ROOT / "run.sh", tmp_path / "run.sh")
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "examples" / "linkbridge-tcp").mkdir(parents=True)
    (tmp_path / "examples" / "linkbridge-tcp" / "pyproject.toml").write_text("")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text(NOISY_PIP)
    (bin_dir / "linkbridge").write_text("#!/bin/sh\necho \"lab ran: $*\"\n")
    for program in bin_dir.iterdir():
        program.chmod(0o755)
    return tmp_path


def test_first_install_prints_one_line(tmp_path: Path) -> None:
    checkout = fake_checkout(tmp_path)
    done = subprocess.run(["bash", "run.sh", "lab", "--help"], cwd=checkout, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "lab ran: lab --help\n"
    assert done.stderr.splitlines() == ["run.sh: installing linkbridge into .venv "
                                        "(log: .venv/install.log)"]
    assert "SetuptoolsDeprecationWarning" in (checkout / ".venv" / "install.log").read_text()
    again = subprocess.run(["bash", "run.sh", "lab"], cwd=checkout, capture_output=True,
                           text=True, timeout=60, check=False)
    assert again.stderr == ""  # installed once: no line at all the next time


def test_a_failed_install_shows_the_log(tmp_path: Path) -> None:
    checkout = fake_checkout(tmp_path)
    done = subprocess.run(["bash", "run.sh", "lab"], cwd=checkout, capture_output=True,
                          text=True, timeout=60, check=False,
                          env={"PATH": "/usr/bin:/bin", "FAIL_INSTALL": "1"})
    assert done.returncode == 1
    assert "SetuptoolsDeprecationWarning" in done.stderr
    assert done.stderr.splitlines()[-1] == "run.sh: install failed, see .venv/install.log"
    assert not (checkout / ".venv" / ".installed").exists()
