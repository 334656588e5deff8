"""Command output into a pipe whose reader has gone (`linkbridge links | head -1`)."""

from __future__ import annotations

import subprocess
import sys


def test_closed_pipe_ends_quietly_without_a_traceback() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "linkbridge", "links"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before linkbridge has even started up
    error = proc.stderr.read().decode()
    assert proc.wait(timeout=30) == 141
    assert error == ""
