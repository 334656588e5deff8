"""Install as a user does: wheels built from a copy of the repo (linkbridge and the example
third-party plugin) go into a fresh venv with `pip install --only-binary=:all:` (no compiler,
no source tree); there `linkbridge links` finds the built-in plugins and the injected one, the
manual pages are in share/man/man1, completion knows the plugin's scheme, and `linkbridge lab`
runs from the wheel. A second venv with only linkbridge's wheel and pluggy (no pyserial, none of
the other dependencies) imports the plugin API."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__",
                                    ".*_cache", ".hypothesis", "tests", "benchmarks")


def pip(*args: str) -> None:
    """The test venv's pip (the user's pip, working on another environment with --python)."""
    done = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the two wheels installed; its path."""
    top = tmp_path_factory.mktemp("wheel")
    source = top / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)  # the build writes into the tree it builds
    wheels = top / "wheels"
    # built in the test venv, which has the build requirements (run.sh installs them there)
    pip("wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(wheels), str(source),
        str(source / "examples" / "linkbridge-tcp"))
    venv = top / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    pip("--python", str(venv / "bin" / "python"), "install", "--only-binary=:all:",
        *map(str, sorted(wheels.glob("*.whl"))))
    return venv


def run(venv: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`linkbridge ARGS` from the venv, away from the source tree."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    return subprocess.run([str(venv / "bin" / "linkbridge"), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=venv, env=env, check=False)


def test_links_finds_built_in_and_injected_plugins(installed: Path) -> None:
    done = run(installed, "links")
    assert done.returncode == 0, done.stderr
    schemes = re.findall(r"^([a-z0-9]+):.*\[([a-z0-9_]+)\]$", done.stdout, re.MULTILINE)
    assert {("udp", "udp"), ("serial", "serial"), ("sim", "sim"), ("tcp", "tcp")} <= set(schemes)
    where = subprocess.run([str(installed / "bin" / "python"), "-c",
                            "import linkbridge, linkbridge_tcp; "
                            "print(linkbridge.__file__); print(linkbridge_tcp.__file__)"],
                           capture_output=True, text=True, cwd=installed, check=True)
    assert all(line.startswith(str(installed)) for line in where.stdout.splitlines())


def test_manual_pages_and_completion_come_with_the_wheel(installed: Path) -> None:
    man = installed / "share" / "man" / "man1"
    help_text = run(installed, "--help").stdout
    for command in ("up", "status", "lab", "completion"):
        assert command in help_text
        page = (man / f"linkbridge-{command}.1").read_text()
        assert page.startswith(f'.TH "LINKBRIDGE-{command.upper()}" "1"')
    assert "\\fB\\-\\-prometheus\\fR" in (man / "linkbridge-status.1").read_text()
    if shutil.which("man"):
        shown = subprocess.run(["man", "-M", str(installed / "share" / "man"), "linkbridge-lab"],
                               capture_output=True, text=True, check=False,
                               env={**os.environ, "MANPAGER": "cat", "MANWIDTH": "100"})
        assert "--plot" in shown.stdout.replace("\u2010", "-"), shown.stderr
    completion = run(installed, "completion", "bash")
    assert completion.returncode == 0 and "tcp:" in completion.stdout


def test_lab_runs_from_the_wheel(root: None, installed: Path) -> None:
    done = run(installed, "lab", "--count", "3", "--bytes", "200000", timeout=120)
    assert done.returncode == 0, done.stderr
    assert "3 sent, 3 received" in done.stdout and "content intact" in done.stdout


def test_the_plugin_api_needs_only_pluggy(installed: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    wheel, = (installed.parent / "wheels").glob("linkbridge-*.whl")
    pip("--python", str(venv / "bin" / "python"), "install", "--only-binary=:all:", "--no-deps",
        str(wheel), "pluggy")
    probe = ("import importlib.util, linkbridge.plugin, linkbridge.plugin.codecs, "
             "linkbridge.plugin.lab\n"
             "print(linkbridge.plugin.__file__, importlib.util.find_spec('serial'))")
    done = subprocess.run([str(venv / "bin" / "python"), "-I", "-c", probe], capture_output=True,
                          text=True, cwd=venv, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    where, serial = done.stdout.split()
    assert where.startswith(str(venv)) and serial == "None"  # the wheel's, and no pyserial


def test_a_plugin_made_by_plugin_new_installs_from_the_wheel(installed: Path) -> None:
    """The templates ship in the wheel; the package they make installs with pip and is
    listed (its tests run in test_plugin_new.py)."""
    made = run(installed, "plugin", "new", "wheeltest")
    assert made.returncode == 0, made.stderr
    pip("--python", str(installed / "bin" / "python"), "install", "--no-deps",
        str(installed / "linkbridge-wheeltest"))
    listed = run(installed, "links")
    assert re.search(r"^wheeltest:HOST:PORT.*\[wheeltest\]$", listed.stdout, re.MULTILINE), \
        listed.stdout + listed.stderr
