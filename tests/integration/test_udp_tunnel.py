"""Two tunnels over the `udp:` link between two namespaces: ping, TCP, the lab command."""

from __future__ import annotations

import subprocess
import sys

from linkbridge.lab.probes import ping, tcp_transfer
from linkbridge.lab.run import lab_tunnels
from linkbridge.lab.topology import OVERLAY, TwoHosts
from linkbridge.plugin.registry import LinkRegistry


def test_ping_and_tcp_transfer_over_udp(lab: TwoHosts, registry: LinkRegistry) -> None:
    with lab_tunnels(lab, "udp", registry=registry) as (side_a, side_b):
        result = ping(lab.a, OVERLAY[1], count=10, interval=0.01)
        assert result.received == 10, result
        transfer = tcp_transfer(lab.b, OVERLAY[1], lab.a, 3_000_000)
        assert transfer.received_bytes == 3_000_000
        assert transfer.intact
        back = ping(lab.b, OVERLAY[0], count=3, interval=0.01)
        assert back.received == 3
    assert side_a.proc is not None and side_a.proc.returncode == 0, side_a.output()
    assert side_b.proc is not None and side_b.proc.returncode == 0, side_b.output()


def test_tunnel_mtu_follows_link_mtu(lab: TwoHosts, registry: LinkRegistry) -> None:
    with lab_tunnels(lab, "udp:?mtu=500", registry=registry):
        big = ping(lab.a, OVERLAY[1], count=3, interval=0.01, size=1200)  # fragmented by kernel
        assert big.received == 3
        transfer = tcp_transfer(lab.b, OVERLAY[1], lab.a, 500_000)
        assert transfer.intact


def test_lab_command_reports_no_loss(root: None) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "linkbridge", "lab", "--count", "10", "--interval", "0.01",
         "--bytes", "2000000"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "10 sent, 10 received, 0.0% loss" in done.stdout
    assert "content intact" in done.stdout
