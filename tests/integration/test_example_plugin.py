"""The third-party example plugin (examples/linkbridge-tcp): installed, conformant, in a lab;
and what happens when two installed plugins claim one scheme."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from linkbridge.lab.probes import ping, tcp_transfer
from linkbridge.lab.run import lab_tunnels
from linkbridge.lab.topology import OVERLAY, TwoHosts
from linkbridge.plugin.registry import LinkRegistry

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "linkbridge-tcp"

needs_tcp_plugin = pytest.mark.skipif(
    importlib.util.find_spec("linkbridge_tcp") is None,
    reason="linkbridge-tcp is not installed (pip install -e examples/linkbridge-tcp; "
           "./run.sh test does)")


@needs_tcp_plugin
def test_lab_over_the_example_tcp_plugin(lab: TwoHosts, registry: LinkRegistry) -> None:
    with lab_tunnels(lab, "tcp", registry=registry):
        assert ping(lab.a, OVERLAY[1], count=5, interval=0.01).received == 5
        assert tcp_transfer(lab.b, OVERLAY[1], lab.a, 2_000_000).intact


@needs_tcp_plugin
def test_example_plugin_passes_its_own_tests() -> None:
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests"], cwd=EXAMPLE, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout


def install_fake_distribution(where: Path, name: str, module_source: str) -> None:
    """What `pip install` leaves behind for a plugin: a module and its dist-info entry point."""
    (where / f"linkbridge_{name}.py").write_text(module_source)
    info = where / f"linkbridge_{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: linkbridge-{name}\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text(f"[linkbridge]\n{name} = linkbridge_{name}\n")


IMPOSTOR = '''
from linkbridge.plugin import hookimpl
from linkbridge.testing import MemoryLink

class OtherUdp(MemoryLink):
    scheme = "udp"

@hookimpl
def linkbridge_register_links():
    return [OtherUdp]
'''


def test_two_installed_plugins_with_one_scheme_fail_naming_both(tmp_path: Path) -> None:
    install_fake_distribution(tmp_path, "otherudp", IMPOSTOR)
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "linkbridge", "links"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()  # one line, whichever plugin loaded first
    assert line.startswith("linkbridge: error: scheme 'udp' is contributed by two plugins: ")
    assert "'udp' (UdpLink)" in line
    assert "'otherudp' (OtherUdp)" in line
    assert "Traceback" not in done.stderr
