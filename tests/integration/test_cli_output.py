"""Command output into a pipe whose reader has gone (`linkbridge links | head -1`)."""

from __future__ import annotations

import json
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


def test_links_json_describes_every_installed_link_and_wrapper() -> None:
    """Option defaults of a plugin's own type (e.g. kiss: callsigns) are shown as text."""
    done = subprocess.run([sys.executable, "-m", "linkbridge", "links", "--json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    schemes = {(row["scheme"], row["kind"]) for row in rows}
    assert {("udp", "link"), ("serial", "link"), ("sim", "link"), ("kiss", "link"),
            ("sim", "wrapper")} <= schemes
    kiss = next(row for row in rows if row["scheme"] == "kiss")
    assert all(isinstance(option["default"], str | int | float | bool | None)
               for option in kiss["options"])
    assert kiss["drop_reasons"]["kiss_other_port"] == "a KISS data frame for another TNC port"
    assert {"slip_garbage", "crc"} <= set(next(row for row in rows
                                               if row["scheme"] == "serial")["drop_reasons"])
