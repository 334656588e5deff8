"""Teardown after SIGKILL and after a fatal link error: no device, route or process remains."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from linkbridge.lab.processes import LinkbridgeProcess, spawn
from linkbridge.lab.topology import OVERLAY, TwoHosts
from tests.helpers.namespace_state import devices, routed

FAILING_MAIN = Path(__file__).parents[1] / "helpers" / "failing_link_program.py"


def gone_within(ns_name: str, device: str, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if device not in devices(ns_name):
            return True
        time.sleep(0.05)
    return False


def test_sigkill_leaves_no_device_or_route(lab: TwoHosts) -> None:
    tunnel = LinkbridgeProcess(lab.a, ["tunnel", "--rx", "2001", "--tx", "2002", "--remote",
                                       "198.19.30.0/24", "--name", "lbkill"], "tunnel")
    with tunnel:
        assert "lbkill" in devices(lab.a)
        tunnel.stop(signal.SIGKILL)
    assert tunnel.proc is not None and tunnel.proc.returncode == -signal.SIGKILL
    assert gone_within(lab.a, "lbkill")  # a non-persistent TUN goes with its last fd
    assert "198.19.30.0/24" not in routed(lab.a)


def test_fatal_link_error_tears_down_with_one_line(lab: TwoHosts) -> None:
    proc = spawn(lab.a, [sys.executable, str(FAILING_MAIN), "up", "--link", "fail:", "--remote",
                         "198.19.31.0/24", "--address", OVERLAY[0], "--name", "lbfail"],
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                 cwd=str(Path(__file__).parents[2]))
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 1, err
    assert err.strip().splitlines()[-1] == (
        "linkbridge: error: fail: the link hardware went away for good")
    assert "Traceback" not in err
    assert "lbfail" not in devices(lab.a)
    assert "198.19.31.0/24" not in routed(lab.a)
