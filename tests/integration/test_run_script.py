"""run.sh as a new user meets it: the first install prints one progress line, not the
installers' warnings (which go to a log shown only when the install fails); and as a developer
does: a module added after the install (which the strict editable mode would not see) installs
again."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOISY_PIP = """#!/bin/sh
echo "SetuptoolsDeprecationWarning: License classifiers are deprecated." >&2
echo "!!" >&2
echo "Successfully installed linkbridge"
mkdir -p build/__editable__.linkbridge-0.1.0-py3-none-any  # strict editable mode's link tree
[ -z "$FAIL_INSTALL" ]
"""


def fake_checkout(tmp_path: Path) -> Path:
    """run.sh beside a .venv whose python is a noisy stand-in for pip (no network needed)."""
    shutil.copy(ROOT / "run.sh", tmp_path / "run.sh")
    (tmp_path / "pyproject.toml").write_text("")
    for package in ("linkbridge", "plugins/linkbridge_udp"):
        (tmp_path / package).mkdir(parents=True)
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "examples" / "linkbridge-tcp").mkdir(parents=True)
    (tmp_path / "examples" / "linkbridge-tcp" / "pyproject.toml").write_text("")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text(NOISY_PIP)
    (bin_dir / "linkbridge").write_text("#!/bin/sh\necho \"lab ran: $*\"\n")
    (bin_dir / "pip").write_text("#!/bin/sh\nexit 1\n")  # a venv made whole (run.sh looks)
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


def run_lab(checkout: Path) -> str:
    done = subprocess.run(["bash", "run.sh", "lab"], cwd=checkout, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_a_new_or_removed_module_or_a_lost_link_tree_installs_again(tmp_path: Path) -> None:
    checkout = fake_checkout(tmp_path)
    installing = "run.sh: installing linkbridge into .venv (log: .venv/install.log)\n"
    assert run_lab(checkout) == installing
    (checkout / "linkbridge" / "new.py").write_text("")
    assert run_lab(checkout) == installing
    assert run_lab(checkout) == ""
    (checkout / "linkbridge" / "new.py").write_text("changed")  # an edit needs no install
    assert run_lab(checkout) == ""
    (checkout / "plugins" / "linkbridge_udp" / "__init__.py").unlink()
    assert run_lab(checkout) == installing
    shutil.rmtree(checkout / "build")
    assert run_lab(checkout) == installing
    assert run_lab(checkout) == ""
