"""One zip of the pure-Python modules the VM's guest checks import.

The guest reads this machine's files over 9p, under TCG: a cold import of hundreds of small
modules (pyroute2 alone imports ~230) costs minutes there, while one zip is one file to read.
`build()` runs an interpreter here that imports what the guest's checks import and zips every
package and module it loaded from source, compiled; extension modules and the packages that
hold them (cryptography, pytun) stay where they are. The guest runs its checks with the zip
first on its path (`guest_command()`); anything not in it is found as before.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT = 120.0  # seconds

_BUILD = """
import sys, zipfile
from pathlib import Path

import linkbridge.cli.main
import tests.helpers.vm_guest_checks
from linkbridge.plugin.registry import get_plugin_manager

get_plugin_manager()  # the installed plugins, as the guest's tunnels load them
skip = {"__main__", "site", "sitecustomize", "_distutils_hack"}
with zipfile.PyZipFile(sys.argv[1], "w", compression=zipfile.ZIP_STORED) as archive:
    for name in sorted({name.partition(".")[0] for name in list(sys.modules)}):
        module = sys.modules.get(name)
        source = getattr(module, "__file__", None)
        if (name in skip or name.startswith("__editable__") or not source
                or getattr(module, "__name__", name) != name):
            continue  # built in, frozen, a namespace package, an alias, or the interpreter's
        path = Path(source)
        if path.suffix != ".py":
            continue  # an extension module
        if path.name == "__init__.py":
            if any(path.parent.rglob("*.so")):
                continue  # a package with extension modules: its path must stay a directory
            archive.writepy(str(path.parent))
        else:
            archive.writepy(str(path))
"""


def build(path: Path) -> None:
    """Write the zip to `path` (CalledProcessError or TimeoutExpired when it cannot)."""
    subprocess.run([sys.executable, "-c", _BUILD, str(path)], cwd=ROOT, check=True,
                   capture_output=True, timeout=BUILD_TIMEOUT)


GUEST_FLAGS = ("-S", "-P")  # no site (see guest_command()), no current directory on the path


def guest_path(modules: Path) -> str:
    """PYTHONPATH for the guest: the zip, then site-packages (extension modules, the installed
    plugins' entry points), then the source tree (anything the zip lacks)."""
    return f"{modules}:{sysconfig.get_paths()['purelib']}:{ROOT}"


def guest_command(modules: Path, module: str, *args: str) -> str:
    """The shell line that runs `python -m module args` with the zip `modules` first on its
    path: -S leaves out site, whose .pth files would put the editable installs' finders (which
    read the source tree) ahead of the zip, and -P the current directory. Processes the checks
    start inherit PYTHONPATH."""
    return (f"PYTHONPATH={guest_path(modules)} {sys.executable} {' '.join(GUEST_FLAGS)} "
            f"-m {module} {' '.join(args)}")
