"""The suite's zygote (tests/helpers/zygote.py) gives what a new interpreter gives: the exit
status (signals negative, as Popen), the output, the namespace, the environment."""

from __future__ import annotations

import os
import signal

import pytest

from linkbridge import __version__
from linkbridge.lab import netns
from linkbridge.lab.processes import LinkbridgeProcess
from linkbridge.lab.topology import TwoHosts
from tests.helpers import zygote

pytestmark = pytest.mark.skipif(bool(os.environ.get(zygote.FRESH_ENV)),
                                reason=f"{zygote.FRESH_ENV} is set: no zygote")


def test_commands_end_with_their_status_and_output(lab: TwoHosts) -> None:
    launcher = zygote.installed()
    assert launcher is not None
    done = launcher.run(lab.a, ["--version"], timeout=30)
    assert (done.returncode, done.stdout.strip(), done.stderr) == (
        0, f"linkbridge {__version__}", "")
    done = launcher.run(lab.a, ["up", "--no-such-option"], timeout=30)
    assert done.returncode == 2 and "unrecognized arguments" in done.stderr and not done.stdout


def test_a_tunnel_runs_in_its_namespace_and_dies_by_signal(lab: TwoHosts) -> None:
    """Its READY=1 came to the NOTIFY_SOCKET of its own environment (start() waits for it)."""
    side = LinkbridgeProcess(lab.a, ["up", "--rx", "2001", "--tx", "2002", "--remote",
                                     "198.19.70.0/24", "--name", "lbzyg"], "A")
    with side:
        assert side.proc is not None
        pid = side.proc.pid
        assert pid != os.getpid() and in_namespace(pid, lab.a)
        assert side.stop(signal.SIGKILL) == -signal.SIGKILL
    assert "lbzyg" in side.output()


def in_namespace(pid: int, ns_name: str) -> bool:
    """Whether process `pid` is in the named namespace (the inode of its bind mount)."""
    return os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(
        os.path.join(netns.NETNS_DIR, ns_name)).st_ino
