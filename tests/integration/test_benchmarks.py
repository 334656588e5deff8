"""The benchmarks run end to end in their quickest mode and print their tables (no timings)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from benchmarks.compare import METRICS, Sample, table

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_benchmarks(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=timeout, check=False)


def sample(tcp: float, rtt: float, pps: float, rss: float | None) -> Sample:
    return Sample(tcp_mbit=tcp, rtt_avg_ms=rtt, rtt_p99_ms=2 * rtt, pps=pps, loss_percent=1.0,
                  cpu_s_per_gb=None if rss is None else 10.0, rss_mb=rss)


def test_table_gives_median_spread_ratio_and_verdicts() -> None:
    rows = table({
        "socat": [sample(700, 0.2, 60e3, 5), sample(800, 0.1, 70e3, 5), sample(600, 0.3, 50e3, 5)],
        "linkbridge": [sample(1400, 0.2, 140e3, 40), sample(1200, 0.3, 90e3, 40),
                       sample(1300, 0.25, 100e3, 40)],
    })
    assert rows[0].split() == ["metric", "socat", "linkbridge", "lb/socat", "target"]
    assert len(rows) == 1 + len(METRICS)
    tcp, rtt, _p99, pps, *_rest, rss = rows[1:]
    assert "700 [600..800]" in tcp and "1300 [1200..1400]" in tcp
    assert "1.86" in tcp and tcp.endswith(">= 1.5 ok")
    assert "1.25" in rtt and rtt.endswith("<= 1.1 MISSED")
    assert "1.67" in pps and pps.endswith(">= 1.5 ok")
    assert rss.endswith("lb < 60 MB ok")


def test_dispatcher_lists_subcommands_and_rejects_unknown_ones() -> None:
    listing = run_benchmarks("--help", timeout=30)
    assert listing.returncode == 0
    for name in ("compare", "serial-latency", "slip-codec", "serial-goodput"):
        assert name in listing.stdout
    unknown = run_benchmarks("nonsense", timeout=30)
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("benchmarks: error: unknown subcommand 'nonsense'")


@pytest.mark.usefixtures("root")
def test_compare_quickest_mode_prints_the_table() -> None:
    variants = "veth,socat,linkbridge" if shutil.which("socat") else "veth,linkbridge"
    result = run_benchmarks("compare", "--reps", "1", "--seconds", "0.3", "--pings", "5",
                            "--variants", variants)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("metric"))
    assert header.split()[1:4] == variants.split(",")
    for metric in METRICS:
        assert any(line.startswith(metric.label) for line in lines), metric.label


@pytest.mark.usefixtures("root")
def test_serial_latency_quickest_mode_prints_the_overhead() -> None:
    result = run_benchmarks("serial-latency", "--count", "3", "--baud", "1000000")
    assert result.returncode == 0, result.stderr
    assert "bare cable one-way" in result.stdout
    assert "linkbridge overhead per packet" in result.stdout
