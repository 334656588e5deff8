"""sim: end to end in the two-host lab: mean delay within 1 ms and rate within 3% of configured,
--via sim: in front of udp:, and `linkbridge lab` printing configured vs measured."""

from __future__ import annotations

import re
import socket
import statistics
import subprocess
import sys
import threading
import time

from linkbridge.lab import netns
from linkbridge.lab.probes import ping
from linkbridge.lab.run import lab_tunnels
from linkbridge.lab.topology import OVERLAY, TwoHosts
from linkbridge.plugin.registry import LinkRegistry

PINGS = 60
STREAM_PORT = 5400


def trimmed_mean_rtt_ms(lab: TwoHosts) -> float:
    """Mean ping RTT with the top and bottom 10% cut: robust to a noisy machine's outliers,
    unbiased for the symmetric jitter used here."""
    result = ping(lab.a, OVERLAY[1], count=PINGS, interval=0.005, timeout=1.0)
    assert result.received == PINGS
    rtts = sorted(result.rtts_ms)
    cut = PINGS // 10
    return statistics.fmean(rtts[cut:-cut])


def stream_rate(lab: TwoHosts, packets: int, payload: int, per_second: float) -> float:
    """Send `packets` UDP datagrams A -> B at `per_second` (faster than the link, so it stays
    busy); the rate (bit/s of IP packets) at which they arrived: the least-squares slope of
    arrival time over packet number, which one late wake-up at either end cannot skew."""
    with netns.inside(lab.b):
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with netns.inside(lab.a):
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    arrivals: list[float] = []

    def receive() -> None:
        receiver.settimeout(2.0)
        try:
            while len(arrivals) < packets:
                receiver.recv(65535)
                arrivals.append(time.monotonic())
        except TimeoutError:
            return

    with receiver, sender:
        receiver.bind((OVERLAY[1], STREAM_PORT))
        thread = threading.Thread(target=receive, daemon=True)
        thread.start()
        start = time.monotonic()
        for index in range(packets):
            time.sleep(max(0.0, start + (index - 10) / per_second - time.monotonic()))
            sender.sendto(bytes(payload), (OVERLAY[1], STREAM_PORT))
        thread.join(30)
    assert len(arrivals) == packets
    seconds_per_packet = statistics.linear_regression(range(packets), arrivals).slope
    return (payload + 28) * 8 / seconds_per_packet


def test_mean_delay_and_rate_match_the_configuration(lab: TwoHosts, registry: LinkRegistry) -> None:
    delay, jitter, rate = 0.020, 0.002, 1_000_000.0
    with lab_tunnels(lab, "sim:?seed=1", registry=registry):
        baseline = trimmed_mean_rtt_ms(lab)
    with lab_tunnels(lab, f"sim:?seed=1&delay={delay * 1e3:g}ms&jitter={jitter * 1e3:g}ms"
                          f"&rate={rate:g}", registry=registry):
        delayed = trimmed_mean_rtt_ms(lab)
        measured_rate = stream_rate(lab, packets=250, payload=972, per_second=250)
    serialisation = 84 * 8 / rate  # one 84-byte echo packet each way
    one_way = (delayed - baseline) / 2
    print(f"one-way added {one_way:.3f} ms (configured {1e3 * (delay + serialisation):.3f} ms), "
          f"rate {measured_rate:.0f} bit/s (configured {rate:.0f})")
    assert abs(one_way - 1e3 * (delay + serialisation)) < 1.0
    assert abs(measured_rate - rate) / rate < 0.03


def test_via_sim_in_front_of_udp_drops_and_counts(lab: TwoHosts, registry: LinkRegistry) -> None:
    with lab_tunnels(lab, "udp", via=["sim:?loss=20%&seed=7"], registry=registry) as (
            side_a, side_b):
        result = ping(lab.a, OVERLAY[1], count=100, interval=0.002, timeout=0.1)
        assert side_a.stop() == 0 and side_b.stop() == 0
    # an echo survives both directions with probability 0.8 * 0.8
    assert 100 * 0.64 - 15 < result.received < 100 * 0.64 + 15
    for side in (side_a, side_b):
        match = re.search(r"'sim_loss': (\d+)", side.output())
        assert match and int(match.group(1)) > 0, side.output()


def test_lab_command_shows_configured_vs_measured(root: None) -> None:
    url = "sim:?mtu=100&loss=5%&delay=40ms&rate=9600&seed=3"
    done = subprocess.run([sys.executable, "-m", "linkbridge", "lab", "--link", url,
                           "--count", "10"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    print(done.stdout)
    assert "configured" in done.stdout and "measured" in done.stdout
    loss = re.search(r"loss A -> B\s+5\.00%\s+(\d+\.\d+)%", done.stdout)
    rtt = re.search(r"rtt\s+(\d+\.\d+) ms\s+(\d+\.\d+) ms", done.stdout)
    rate = re.search(r"rate A -> B\s+9\.60 kbit/s\s+(\d+\.\d+) kbit/s", done.stdout)
    # a narrow link's TCP figure in a unit that shows it (once printed as `0.0 Mbit/s`)
    tcp = re.search(r"tcp .* = (\d+\.\d+) kbit/s, content intact", done.stdout)
    assert loss and rtt and rate and tcp, done.stdout
    assert 0 < float(tcp.group(1)) <= 9.6
    assert float(rtt.group(1)) == 2 * (40 + 84 * 8 / 9.6)  # delay + serialisation, both ways
    assert float(rtt.group(1)) <= float(rtt.group(2)) < float(rtt.group(1)) + 30
    assert 0 < float(rate.group(1)) <= 9.6 * 1.03


def test_tunnel_mtu_follows_the_sim_mtu_so_the_kernel_fragments(lab: TwoHosts,
                                                                 registry: LinkRegistry) -> None:
    with lab_tunnels(lab, "sim:?mtu=200&seed=1", registry=registry) as (side_a, side_b):
        big = ping(lab.a, OVERLAY[1], count=3, interval=0.01, size=600)
        assert big.received == 3
        assert side_a.stop() == 0 and side_b.stop() == 0
    assert "sim_mtu" not in side_a.output() + side_b.output()
    assert "mtu 200" in side_a.output(), side_a.output()


def test_lab_measured_loss_is_within_a_binomial_bound(root: None) -> None:
    """Over sim: without rate= (no queue drops mix in) the lab's measured loss, packets that A's
    tunnel offered to the link against those B's tunnel received, is the configured loss
    within 4.5 binomial standard errors of the packet count, in each direction."""
    loss = 0.05
    done = subprocess.run([sys.executable, "-m", "linkbridge", "lab", "--link",
                           f"sim:?loss={loss:.0%}&seed=5", "--count", "300", "--interval",
                           "0.005", "--bytes", "100000"],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    print(done.stdout)
    for direction in ("A -> B", "B -> A"):
        match = re.search(rf"loss {direction}\s+5\.00%\s+\S+\s+(\d+) of (\d+) packets",
                          done.stdout)
        assert match, done.stdout
        lost, offered = int(match.group(1)), int(match.group(2))
        bound = 4.5 * (loss * (1 - loss) / offered) ** 0.5
        assert offered >= 300 and abs(lost / offered - loss) <= bound, (lost, offered, bound)
