"""`linkbridge plugin new NAME` makes a package that, installed, `linkbridge links` lists and
whose own tests pass the conformance suite as made. Installed here the way pip leaves it (the
package and a dist-info with the entry points of its own pyproject.toml) so that the test runs
in seconds and offline; test_wheel_install.py installs one with pip, from the wheel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def install_like_pip(package: Path, site: Path) -> None:
    """Copy the package into `site` with the dist-info its pyproject.toml describes."""
    pyproject = tomllib.loads((package / "pyproject.toml").read_text())
    project = pyproject["project"]
    for name in pyproject["tool"]["setuptools"]["packages"]:
        shutil.copytree(package / name, site / name)
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\n"
                                   f"Version: {project['version']}\n")
    groups = "".join(f"[{group}]\n" + "".join(f"{key} = {value}\n" for key, value in
                                              entries.items())
                     for group, entries in project["entry-points"].items())
    (info / "entry_points.txt").write_text(groups)


def test_a_new_plugin_is_listed_and_passes_the_suite(tmp_path: Path) -> None:
    made = subprocess.run([sys.executable, "-m", "linkbridge", "plugin", "new", "demo",
                           "--directory", str(tmp_path)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert made.returncode == 0, made.stderr
    package = tmp_path / "linkbridge-demo"
    linted = subprocess.run([sys.executable, "-m", "ruff", "check", "--config",
                             str(ROOT / "pyproject.toml"), str(package)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert linted.returncode == 0, linted.stdout  # as clean as linkbridge's own code
    site = tmp_path / "site"
    site.mkdir()
    install_like_pip(package, site)
    env = dict(os.environ, PYTHONPATH=str(site))
    listed = subprocess.run([sys.executable, "-m", "linkbridge", "links"], env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert listed.returncode == 0, listed.stderr
    assert "demo:HOST:PORT of the peer (IPv6 as [ADDR]:PORT)  [demo]" in listed.stdout
    tested = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider"],
                            cwd=package, env=env, capture_output=True, text=True, timeout=120,
                            check=False)
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-2000:]
    assert " passed" in tested.stdout and " failed" not in tested.stdout, tested.stdout
    assert "linkbridge conformance: measured" in tested.stdout, tested.stdout
    assert "demo: 4000 packets of" in tested.stdout, tested.stdout
