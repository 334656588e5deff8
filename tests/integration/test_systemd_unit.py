"""The example systemd unit: its ExecStart line, run as systemd would, with a NOTIFY_SOCKET."""

from __future__ import annotations

import configparser
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from linkbridge.lab.probes import ping
from linkbridge.lab.processes import spawn
from linkbridge.lab.topology import OVERLAY, TwoHosts
from tests.helpers.namespace_state import devices, routed

UNIT = Path(__file__).resolve().parents[2] / "examples" / "systemd" / "linkbridge@.service"
INSTALLED = "/usr/local/bin/linkbridge"
CONFIG_DIR = "/etc/linkbridge/"


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    return parser


def exec_start(instance: str, config_dir: Path) -> list[str]:
    """ExecStart as systemd runs it for `instance`, pointed at this checkout and `config_dir`."""
    line = unit()["Service"]["ExecStart"].replace("%i", instance)
    argv = shlex.split(line.replace(CONFIG_DIR, f"{config_dir}/"))
    assert argv[0] == INSTALLED
    return [sys.executable, "-m", "linkbridge", *argv[1:]]


def test_unit_is_type_notify_with_a_clean_stop() -> None:
    service = unit()["Service"]
    assert service["Type"] == "notify"
    assert service["KillSignal"] == "SIGTERM"
    assert "-c /etc/linkbridge/%i.toml" in service["ExecStart"]
    assert {"CAP_NET_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_CHOWN"} <= set(
        service["CapabilityBoundingSet"].split())


class Notifications:
    """A NOTIFY_SOCKET like systemd's: collects what the service sends."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="lb-sd-")
        self.path = os.path.join(self._dir.name, "notify")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(self.path)
        self.seen: list[str] = []

    def wait_for(self, state: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while state not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no {state} within {timeout} s; got {self.seen}")
            self._sock.settimeout(left)
            try:
                self.seen += self._sock.recv(4096).decode().split("\n")
            except TimeoutError:
                continue

    def close(self) -> None:
        self._sock.close()
        self._dir.cleanup()


def test_exec_start_notifies_ready_and_stops_cleanly(lab: TwoHosts, tmp_path: Path) -> None:
    (tmp_path / "labside.toml").write_text(
        f'[[tunnel]]\nname = "lbunit"\nrx = 2001\ntx = 2002\nremote = "{OVERLAY[1]}"\n'
        f'address = "{OVERLAY[0]}"\n')
    notify = Notifications()
    proc = spawn(lab.a, exec_start("labside", tmp_path), env=dict(os.environ,
                 NOTIFY_SOCKET=notify.path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        notify.wait_for("READY=1")
        assert "lbunit" in devices(lab.a)  # READY means the device and routes exist
        assert f"{OVERLAY[1]}/32" in routed(lab.a)
        ping(lab.a, OVERLAY[1], count=1, timeout=0.1)  # traffic reaches the data path
        proc.send_signal(signal.SIGTERM)  # what `systemctl stop` does
        notify.wait_for("STOPPING=1")
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        notify.close()
    output = proc.stdout.read().decode() if proc.stdout else ""
    assert "Traceback" not in output
    assert "stopped by SIGTERM" in output
    assert "lbunit" not in devices(lab.a)
    assert f"{OVERLAY[1]}/32" not in routed(lab.a)
