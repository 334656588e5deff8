"""Command hooks (ops/hooks.py) run for real through /bin/sh: their variables, failures and hangs
reported, never raised (tests/unit/test_hooks.py has what needs no process)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from linkbridge.ops.hooks import Hooks, run_command
from linkbridge.ops.signals import Shutdown, shutdown_on_signals
from linkbridge.plugin.tunnel_info import TunnelInfo

INFO = TunnelInfo(device="lb7", mtu=1400, addresses=("198.19.0.1/24", "fd00::1/64"),
                  routes=("198.19.1.0/24",), link="udp:198.18.0.2:5555")


def test_hook_sees_its_variables(tmp_path: Path) -> None:
    out = tmp_path / "env"
    hooks = Hooks({"link-down": f'env | grep ^LINKBRIDGE_ | sort > "{out}"'})
    result = hooks.run("link-down", INFO, "no frame for 5.0 s", "down")
    assert result is not None and result.ok
    # the hook's own variables: not those the test run inherits (LINKBRIDGE_TEST_WORKERS...)
    added = [line for line in out.read_text().splitlines()
             if os.environ.get(line.partition("=")[0]) != line.partition("=")[2]]
    assert added == [
        "LINKBRIDGE_ADDRESSES=198.19.0.1/24 fd00::1/64",
        "LINKBRIDGE_DEVICE=lb7",
        "LINKBRIDGE_EVENT=link-down",
        "LINKBRIDGE_LINK=udp:198.18.0.2:5555",
        "LINKBRIDGE_LINK_STATE=down",
        "LINKBRIDGE_MTU=1400",
        "LINKBRIDGE_REASON=no frame for 5.0 s",
        "LINKBRIDGE_ROUTES=198.19.1.0/24",
    ]


def test_failure_is_logged_with_its_exit_code(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="linkbridge"):
        result = Hooks({"up": "echo half done; exit 3"}).run("up", INFO, "started")
    assert result is not None and not result.ok and result.returncode == 3
    assert result.describe() == "exit code 3"
    assert "lb7: on-up: half done" in caplog.messages
    assert "lb7: on-up hook failed (exit code 3): echo half done; exit 3" in caplog.messages


def test_hanging_hook_and_its_children_are_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "child"
    started = time.monotonic()
    result = run_command(f'sleep 60 & echo $! > "{pid_file}"; wait', dict(os.environ), 0.5)
    assert time.monotonic() - started < 5
    assert result.timed_out and not result.ok
    assert result.describe() == "killed after running too long"
    child = int(pid_file.read_text())
    for _ in range(50):  # the killed child is reaped by init
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the hook's background child survived")


def test_killed_by_signal_is_named() -> None:
    result = run_command("kill -TERM $$", dict(os.environ), 5)
    assert result.describe() == "killed by SIGTERM"


@pytest.mark.parametrize("round_", range(20))
def test_a_sigterm_as_the_hook_starts_stops_the_hook_too(tmp_path: Path, signal_handlers: None,
                                                         round_: int) -> None:
    """The hook signals the tunnel the moment its shell runs: wherever the Shutdown lands
    (Popen was still waiting for the exec to be confirmed, once in seven runs under load),
    the shell is killed and reaped before it propagates."""
    pid_file = tmp_path / "hook.pid"
    with shutdown_on_signals(), pytest.raises(Shutdown):
        run_command(f'echo $$ > "{pid_file}"; kill -TERM {os.getpid()}; sleep 30', {},
                    timeout=10)
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)
