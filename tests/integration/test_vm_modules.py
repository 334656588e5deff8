"""The VM guest's Python imports the project's pure-Python modules from one zip (a real
interpreter started with the guest's flags: tests/helpers/vm_modules.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.helpers import vm_modules


def test_the_guest_imports_its_modules_from_one_zip(tmp_path: Path) -> None:
    modules = tmp_path / "modules.zip"
    vm_modules.build(modules)
    names = set(zipfile.ZipFile(modules).namelist())
    for expected in ("linkbridge/__init__.pyc", "pyroute2/__init__.pyc", "pluggy/__init__.pyc",
                     "linkbridge_udp/__init__.pyc", "tests/helpers/vm_guest_checks.pyc"):
        assert expected in names
    # packages with extension modules stay directories
    assert not any(name.endswith(".so") or name.startswith(("cryptography/", "pytun"))
                   for name in names)
    probe = ("import linkbridge.cli.main, pyroute2, cryptography\n"
             "from linkbridge.plugin.registry import get_plugin_manager\n"
             "print(linkbridge.__file__, pyroute2.__file__, cryptography.__file__)\n"
             "print(sorted(get_plugin_manager().list_name_plugin())[0][0])")
    done = subprocess.run([sys.executable, *vm_modules.GUEST_FLAGS, "-c", probe],
                          env=dict(os.environ, PYTHONPATH=vm_modules.guest_path(modules)),
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    files, plugin = done.stdout.splitlines()
    ours, route, crypto = files.split()
    assert ours.startswith(str(modules)) and route.startswith(str(modules))
    assert not crypto.startswith(str(modules))
    assert plugin  # the installed plugins found through site-packages' entry points
