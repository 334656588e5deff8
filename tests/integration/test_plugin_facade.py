"""The plugin API as a plugin package meets it, in processes of their own: `linkbridge.plugin`
imports without pyserial, and `mypy --strict` checks a plugin against the installed linkbridge
from outside the tree, with no MYPYPATH (docs/plugins.md, "Type checking a plugin")."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "linkbridge-tcp"

# As if pyserial were not installed: importing it, or anything of it, fails the way a missing
# package does. Then the public API and the plugins that open no serial port are imported, and
# every name the facade exports is looked up (the conformance suite's too).
WITHOUT_PYSERIAL = """
import importlib.abc
import sys


class NoPyserial(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "serial" or name.startswith("serial."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NoPyserial())
import linkbridge.plugin
import linkbridge.plugin.codecs
import linkbridge.plugin.lab
import linkbridge_sim
import linkbridge_tcp
import linkbridge_udp

for name in linkbridge.plugin.__all__:
    getattr(linkbridge.plugin, name)
assert not [name for name in sys.modules if name == "serial" or name.startswith("serial.")]
try:
    import linkbridge.plugin.serial
except ModuleNotFoundError as exc:
    print("serial helpers need", exc.name)
"""


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("MYPYPATH", "PYTHONPATH")}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def test_the_plugin_api_imports_without_pyserial(tmp_path: Path) -> None:
    done = run([sys.executable, "-I", "-c", WITHOUT_PYSERIAL], tmp_path)
    assert done.returncode == 0, done.stderr
    # the stand-in works: the one module that needs pyserial could not import it
    assert done.stdout == "serial helpers need serial\n"


def test_a_plugin_type_checks_against_the_installed_linkbridge(tmp_path: Path) -> None:
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install -e '.[test]' installs it)")
    done = run([sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"),
                str(EXAMPLE)], tmp_path)
    assert done.returncode == 0, (
        "mypy --strict on examples/linkbridge-tcp, outside the tree, found problems; if it "
        "cannot find linkbridge, install it with `pip install -e . --config-settings "
        f"editable_mode=strict` (./run.sh does):\n{done.stdout}{done.stderr}")
    assert done.stdout.startswith("Success: no issues found in 2 source files"), done.stdout
