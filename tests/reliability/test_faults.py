"""Faults: the peer killed and restarted, the TUN refusing writes, a full link queue; the
survivor keeps running."""

from __future__ import annotations

import re
import signal
import time

from pyroute2 import IPRoute

from linkbridge.lab import netns
from linkbridge.lab.probes import ping, udp_flood
from linkbridge.lab.processes import LinkbridgeProcess
from linkbridge.lab.run import TUN_NAME, lab_tunnels, tunnel_args
from linkbridge.lab.topology import OVERLAY, UNDERLAY, TwoHosts
from linkbridge.plugin.registry import LinkRegistry
from linkbridge.plugin.url import parse_link_url

LAB_PORT = 47000


def side_b(lab: TwoHosts) -> LinkbridgeProcess:
    url = parse_link_url(f"udp:{UNDERLAY[0]}:{LAB_PORT}")
    return LinkbridgeProcess(lab.b, tunnel_args(url, (), None, OVERLAY[1], OVERLAY[0]), "tunnel B")


def recovers_within(lab: TwoHosts, seconds: float) -> float:
    """Ping until a reply comes; return how long it took."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if ping(lab.a, OVERLAY[1], count=1, timeout=0.2, interval=0).received:
            return time.monotonic() - start
    raise AssertionError(f"no reply within {seconds} s")


def test_peer_killed_and_restarted(lab: TwoHosts, registry: LinkRegistry) -> None:
    with lab_tunnels(lab, "udp", registry=registry) as (side_a, first_b):
        assert ping(lab.a, OVERLAY[1], count=3, interval=0.01).received == 3
        first_b.stop(signal.SIGKILL)
        lost = ping(lab.a, OVERLAY[1], count=3, interval=0.01, timeout=0.2)
        assert lost.received == 0
        assert side_a.proc is not None and side_a.proc.poll() is None  # the survivor runs on
        with side_b(lab):
            took = recovers_within(lab, 5.0)
            assert ping(lab.a, OVERLAY[1], count=5, interval=0.01).received == 5
        assert side_a.proc.poll() is None
    print(f"recovered {took * 1000:.0f} ms after the peer came back")


def test_tun_write_errors_are_counted_not_fatal(lab: TwoHosts, registry: LinkRegistry) -> None:
    with lab_tunnels(lab, "udp", registry=registry) as (_side_a, peer_b):
        with netns.inside(lab.b), IPRoute() as ipr:
            index = ipr.link_lookup(ifname=TUN_NAME)[0]
            ipr.link("set", index=index, state="down")  # the TUN now refuses writes (EIO)
        ping(lab.a, OVERLAY[1], count=5, interval=0.01, timeout=0.1)
        assert peer_b.proc is not None and peer_b.proc.poll() is None
        assert peer_b.stop() == 0
    match = re.search(r"'tun_write_error': (\d+)", peer_b.output())
    assert match and int(match.group(1)) >= 5, peer_b.output()


def test_full_link_queue_drops_are_counted_and_traffic_recovers(lab: TwoHosts,
                                                                 registry: LinkRegistry) -> None:
    slow = "sim:?rate=2mbit&limit=20"  # a 20-packet queue in front of a 2 Mbit/s link
    with lab_tunnels(lab, "udp", via=[slow], registry=registry) as (side_a, _side_b):
        flood = udp_flood(lab.a, lab.b, OVERLAY[1], size=1000, duration=1.0)
        assert 0 < flood.received < flood.sent  # the link carried what its rate allows
        assert side_a.proc is not None and side_a.proc.poll() is None
        recovers_within(lab, 3.0)
        assert ping(lab.a, OVERLAY[1], count=5, interval=0.01).received == 5
        assert side_a.stop() == 0
    match = re.search(r"'sim_queue_full': (\d+)", side_a.output())
    assert match and int(match.group(1)) > 0, side_a.output()
    print(f"flood: {flood.sent} sent, {flood.received} delivered, "
          f"{match.group(1)} counted as sim_queue_full on A")
