"""`linkbridge` run as a one-shot command, the way a user runs it: in a namespace (`run_in`), or
`linkbridge status` (the operations tests' private status directory is the `run_dir` fixture of
tests/conftest.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from linkbridge.lab.probes import PingResult
from linkbridge.lab.processes import LinkbridgeProcess, spawn
from tests.helpers import zygote


def run_in(ns_name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `linkbridge ARGS` in the namespace and wait (30 s at most) for it to end (forked
    from the zygote when the suite has one: tests/helpers/zygote.py)."""
    launcher = zygote.installed()
    if launcher is not None:
        return launcher.run(ns_name, list(args), timeout=30)
    proc = spawn(ns_name, [sys.executable, "-m", "linkbridge", *args], stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=30)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def stop(process: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """SIGTERM `process` and wait `timeout` seconds for it to end, then kill it."""
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def status(*args: str, preexec: Callable[[], None] | None = None
           ) -> subprocess.CompletedProcess[str]:
    """Run `linkbridge status ARGS` (as the user `preexec` switches to, when given)."""
    launcher = zygote.installed()
    if launcher is not None and preexec is None:
        return launcher.run(None, ["status", *args], timeout=60)
    return subprocess.run([sys.executable, "-m", "linkbridge", "status", *args],
                          capture_output=True, text=True, timeout=60, preexec_fn=preexec)


def status_json() -> list[dict[str, Any]]:
    """The tunnels `linkbridge status --json` reports; the command must succeed."""
    done = status("--json")
    assert done.returncode == 0, done.stderr
    documents: list[dict[str, Any]] = json.loads(done.stdout)
    return documents


def tunnel_status(process: LinkbridgeProcess) -> dict[str, Any]:
    """The status document of the tunnel `process` runs (it must run one)."""
    assert process.proc is not None
    [document] = [doc for doc in status_json() if doc["pid"] == process.proc.pid]
    return document


def unanswered(result: PingResult) -> list[int]:
    """The sequence numbers of the echo requests that got no reply."""
    return [seq for seq, (_, rtt) in enumerate(result.timeline) if rtt is None]
