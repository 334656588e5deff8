"""Counters for Prometheus (`status --prometheus`, the `--metrics` HTTP endpoint) and live rates
(`status --watch`, on a pty and into a pipe) of real lab tunnels moving real pings."""

from __future__ import annotations

import os
import pty
import re
import select
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

from linkbridge.lab.probes import ping
from linkbridge.lab.run import lab_tunnels
from linkbridge.lab.topology import OVERLAY, TwoHosts
from linkbridge.plugin.conformance import free_port
from linkbridge.plugin.registry import LinkRegistry
from tests.helpers.commands import status

LINKBRIDGE = [sys.executable, "-m", "linkbridge"]


def packets(text: str, pid: int, side: str, direction: str) -> int:
    """One packets_total sample of the exposition `text`."""
    pattern = (rf'^linkbridge_packets_total\{{tunnel="[^"]+",pid="{pid}",link="[^"]*",'
               rf'side="{side}",direction="{direction}"\}} (\d+)$')
    found = re.findall(pattern, text, re.MULTILINE)
    assert len(found) == 1, text
    return int(found[0])


@pytest.fixture
def tunnels(lab: TwoHosts, run_dir: object, registry: LinkRegistry) -> Iterator[int]:
    """A udp tunnel pair in the lab; yields side A's pid."""
    with lab_tunnels(lab, "udp", registry=registry) as (side_a, _):
        assert side_a.proc is not None
        yield side_a.proc.pid


@pytest.fixture
def metrics_url(tunnels: int) -> Iterator[str]:
    """`linkbridge status --metrics` serving on a free loopback port (the default address)."""
    port = free_port(socket.SOCK_STREAM)
    proc = subprocess.Popen([*LINKBRIDGE, "status", "--metrics", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except ConnectionRefusedError:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the metrics endpoint never listened"
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err


def scrape(url: str, accept: str = "text/plain") -> tuple[str, str]:
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.headers["Content-Type"], answer.read().decode()


def test_metrics_endpoint_counts_a_ping(lab: TwoHosts, tunnels: int, metrics_url: str) -> None:
    kind, before = scrape(metrics_url)
    assert kind.startswith("text/plain; version=0.0.4")
    assert ping(lab.a, OVERLAY[1], count=5, interval=0.01).received == 5
    sides = (("tunnel", "rx"), ("link", "tx"), ("link", "rx"), ("tunnel", "tx"))
    deadline = time.monotonic() + 2  # a data path counts a batch as it finishes it
    while True:
        _, after = scrape(metrics_url)
        grew = {(side, direction): packets(after, tunnels, side, direction)
                - packets(before, tunnels, side, direction) for side, direction in sides}
        if min(grew.values()) >= 5 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert min(grew.values()) >= 5, (grew, after)
    kind, openmetrics = scrape(metrics_url, "application/openmetrics-text; version=1.0.0")
    assert kind.startswith("application/openmetrics-text")
    assert openmetrics.endswith("# EOF\n")
    with pytest.raises(urllib.error.HTTPError, match="404"):
        scrape(metrics_url.replace("/metrics", "/other"))
    # the same text, once, from the command
    printed = status("--prometheus")
    assert printed.returncode == 0
    assert packets(printed.stdout, tunnels, "tunnel", "rx") >= packets(after, tunnels, "tunnel",
                                                                        "rx")
    # a port in use is one line
    port = int(metrics_url.split(":")[2].split("/")[0])
    done = subprocess.run([*LINKBRIDGE, "status", "--metrics", f"127.0.0.1:{port}"],
                          capture_output=True, text=True, timeout=20)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"linkbridge: error: --metrics 127.0.0.1:{port}: cannot listen on 127.0.0.1:{port}: "
        "Address already in use"]


def _pinging(lab: TwoHosts) -> subprocess.Popen[bytes]:
    """Pings across the tunnel in the background, ~20 a second until terminated (the lab's own
    ping, as a program): as long as the watches take to start on a busy machine."""
    code = (f"from linkbridge.lab.probes import ping; "
            f"ping({lab.a!r}, {OVERLAY[1]!r}, count=1_000_000, interval=0.05)")
    return subprocess.Popen([sys.executable, "-c", code])


WATCH = [*LINKBRIDGE, "status", "--watch", "--interval", "0.5", "--count", "3"]


def test_watch_into_a_pipe_and_on_a_terminal(lab: TwoHosts, tunnels: int) -> None:
    pinger = _pinging(lab)
    try:
        piped = subprocess.run(WATCH, capture_output=True, text=True, timeout=30)
        shown = _on_a_terminal(WATCH)
    finally:
        pinger.terminate()
        pinger.wait(timeout=30)

    assert piped.returncode == 0, piped.stderr
    assert "\x1b" not in piped.stdout
    lines = piped.stdout.splitlines()
    mine = [line for line in lines if f" {tunnels} tunnel " in line]
    assert len(mine) == 3 and len(lines) == 12  # 3 refreshes x 2 tunnels x 2 sides
    rates = [float(re.search(r"rx_pps=([\d.]+)", line)[1]) for line in mine]  # type: ignore[index]
    assert max(rates) >= 5  # ~20 echo requests/s through the device

    screens = shown.split("\x1b[H\x1b[2J")
    assert screens[0] == "" and len(screens) == 4
    assert all("RX PKT/S" in screen for screen in screens[1:])
    table = [line for line in screens[-1].splitlines() if line.startswith("lbt0")
             and f" {tunnels} " in line and " tunnel " in line]
    assert len(table) == 1
    assert float(table[0].split()[3].removesuffix("/s")) >= 5


def _on_a_terminal(argv: list[str]) -> str:
    """What `argv` writes to a pty (its stdout), once it has exited successfully."""
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen(argv, stdout=terminal, stderr=subprocess.PIPE)
        os.close(terminal)
        output = b""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 1)
            if not ready:
                continue
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the terminal's other end is closed
                break
            if not chunk:
                break
            output += chunk
        assert proc.wait(timeout=10) == 0
    finally:
        os.close(controller)
    return output.decode()
