"""The benchmarks run end to end in their quickest mode and print their tables (no timings)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys

import pytest

from benchmarks import repair, serial_latency, slip_codec, syscalls
from benchmarks.compare import METRICS, Sample, table
from benchmarks.running import verdict_status

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
    for name in ("compare", "serial-latency", "slip-codec", "serial-goodput", "compression",
                 "encryption"):
        assert name in listing.stdout
    unknown = run_benchmarks("nonsense", timeout=30)
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("benchmarks: error: unknown subcommand 'nonsense'")


@pytest.mark.usefixtures("root")
def test_compare_quickest_mode_prints_the_table() -> None:
    variants = "veth,socat,linkbridge" if shutil.which("socat") else "veth,linkbridge"
    result = run_benchmarks("compare", "--reps", "1", "--seconds", "0.3", "--pings", "5",
                            "--variants", variants)
    assert result.returncode == (1 if "MISSED" in result.stdout else 0), result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("metric"))
    assert header.split()[1:4] == variants.split(",")
    for metric in METRICS:
        assert any(line.startswith(metric.label) for line in lines), metric.label


@pytest.mark.usefixtures("root")
def test_serial_latency_quickest_mode_prints_the_overhead() -> None:
    result = run_benchmarks("serial-latency", "--count", "3", "--baud", "1000000")
    assert result.returncode == (1 if "MISSED" in result.stdout else 0), result.stderr
    assert "bare cable one-way" in result.stdout
    assert "linkbridge overhead per packet" in result.stdout


def test_a_missed_target_is_a_failing_exit_status(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Every benchmark's verdict lines decide its exit status: MISSED anywhere -> 1."""
    rows = table({"socat": [sample(700, 0.2, 60e3, 5)],
                  "linkbridge": [sample(1400, 0.3, 140e3, 40)]})
    assert any("MISSED" in row for row in rows) and verdict_status(rows) == 1
    lines, _overhead = serial_latency.report(115200, bytes(100), [1.0, 1.0], [10.0, 10.0], 0)
    assert "MISSED" in lines[-1] and verdict_status(lines) == 1
    lines, _overhead = serial_latency.report(115200, bytes(100), [1.0, 1.0], [2.5, 2.5], 0)
    assert "ok" in lines[-1] and verdict_status(lines) == 0
    # slip-codec end to end: a codec slower than the line target exits 1, a fast one 0
    monkeypatch.setattr(slip_codec, "measure", lambda packets, repeat: {
        "encode": 1.0, "decode": 1.0, "round_trip": 1.0, "round_trip_crc": 1.0,
        "sliplib_round_trip": 2.0})
    assert slip_codec.main(["--packets", "1", "--repeat", "1"]) == 1
    out = capsys.readouterr().out
    assert "(target >= 10x: MISSED)" in out and "(target >= 1.5x: MISSED)" in out
    monkeypatch.setattr(slip_codec, "measure", lambda packets, repeat: {
        "encode": 900.0, "decode": 300.0, "round_trip": 200.0, "round_trip_crc": 100.0})
    assert slip_codec.main(["--packets", "1", "--repeat", "1"]) == 0


def test_repair_prints_each_target_ok_or_missed_and_exits_1_on_a_miss(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    met = repair.Target("TCP B/s, loss 5%", {"off": 900.0, "arq": 880.0}, "B/s", 0.93,
                        "arq >= 0.92x lossless plain, intact", True)
    missed = repair.Target("UDP median one-way delay ms", {"off": 57.0, "fec": 130.0}, "ms",
                           73.0, "fec <= 10 ms above plain", False, "fec: parity 6/16")
    monkeypatch.setattr(repair, "measure", lambda args: [met])
    assert repair.main(["--cases", "tcp"]) == 0
    assert "arq >= 0.92x lossless plain, intact: ok" in capsys.readouterr().out
    monkeypatch.setattr(repair, "measure", lambda args: [met, missed])
    assert repair.main(["--cases", "udp", "--airtime", "on"]) == 1
    out = capsys.readouterr().out
    assert "fec <= 10 ms above plain: MISSED\n    fec: parity 6/16" in out
    assert "loss_airtime on" in out


def test_slip_codec_exit_status_follows_its_verdicts() -> None:
    result = run_benchmarks("slip-codec", "--packets", "100", "--repeat", "1", timeout=60)
    assert "target >= 10x" in result.stdout
    assert result.returncode == (1 if "MISSED" in result.stdout else 0), result.stdout


def test_encryption_quick_mode_prints_bytes_and_cost_per_packet() -> None:
    result = run_benchmarks("encryption", "--quick", "--count", "200", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "overhead 20 bytes per packet" in result.stdout
    assert "(target <= 24: ok)" in result.stdout
    rows = [line.split() for line in result.stdout.splitlines()[2:8]]
    sizes = [("44", "64"), ("576", "596"), ("1452", "1472")]
    assert [(row[0], row[1], row[3]) for row in rows] == [
        (cipher, *size) for cipher in ("aes-256-gcm", "chacha20-poly1305") for size in sizes]


def test_table_with_offload_adds_its_rows_ratios_and_targets() -> None:
    def with_extra(base: Sample, tcp6: float, lossy: float, cpu: float) -> Sample:
        return dataclasses.replace(base, tcp6_mbit=tcp6, tcp_loss_mbit=lossy, cpu_s_per_gb=cpu)

    rows = table({"socat": [sample(600, 0.2, 60e3, 5)],
                  "linkbridge": [with_extra(sample(1300, 0.2, 140e3, 40), 1200, 900, 9.0)],
                  "offload": [with_extra(sample(4000, 0.21, 130e3, 45), 3000, 1000, 2.5)]})
    assert "off/lb" in rows[0] and "off/socat" in rows[0] and "offload target" in rows[0]
    by_label = {row.split("  ")[0]: row for row in rows[1:]}
    assert by_label["TCP Mbit/s"].endswith(">= 3x lb, >= 6x socat ok")
    assert "3.08" in by_label["TCP Mbit/s"] and "6.67" in by_label["TCP Mbit/s"]
    assert by_label["TCP IPv6 Mbit/s"].endswith(">= 3x lb MISSED")  # 2.5x
    assert by_label["TCP Mbit/s via sim:?loss=0.1%"].endswith(">= 1x lb ok")
    assert by_label["ping RTT avg ms"].endswith("<= 1.1x socat ok")
    assert by_label["CPU s per GB (both)"].endswith("<= 3 ok")
    assert by_label["RSS MB (max side)"].endswith("< 60 MB ok")
    assert verdict_status(rows) == 1
    without = table({"socat": [sample(600, 0.2, 60e3, 5)],
                     "linkbridge": [sample(1300, 0.2, 140e3, 40)]})
    assert len(without) == 1 + len(METRICS) and "off/lb" not in without[0]


PERF_SUMMARY = """
 Summary of events:

 python (7792), 2444 events, 47.7%

   syscall            calls  errors  total       min       avg       max       stddev
                                     (msec)    (msec)    (msec)    (msec)        (%)
   --------------- --------  ------ -------- --------- --------- ---------     ------
   poll                 402      0  1934.568     0.000     4.812   816.895     42.16%
   recvmsg              201     50     2.625     0.009     0.013     0.042      2.09%

 python (7793), 28 events, 0.5%

   syscall            calls  errors  total       min       avg       max       stddev
                                     (msec)    (msec)    (msec)    (msec)        (%)
   --------------- --------  ------ -------- --------- --------- ---------     ------
   futex                 14     14  2626.033     0.000   187.574   211.925      7.71%
   poll                   2      0     0.100     0.000     0.050     0.090      1.00%
"""


def test_syscalls_adds_up_threads_counts_failures_apart_and_takes_the_idle_rate_off() -> None:
    counts = syscalls.summary_counts(PERF_SUMMARY.splitlines())
    assert counts == {"poll": 404, "recvmsg": 151, "recvmsg!": 50, "futex!": 14}
    idle = syscalls.summary_counts(PERF_SUMMARY.splitlines()[-2:])  # futex 14, poll 2 in 1 s
    per_ping = syscalls.per_unit(counts, idle, 1.0, 2.0, 100)  # 2 s, 100 pings
    assert per_ping == {"poll": 4.0, "recvmsg": 1.51, "recvmsg!": 0.5, "futex!": 0.0}
    rows = syscalls.table({"a": per_ping, "b": {"poll": 2.0}}, 0.05)
    assert rows[0].split() == ["syscall", "a", "b"]
    assert rows[1].split() == ["poll", "4.00", "2.00"] and rows[-1].split()[0] == "total"
    assert "futex!" not in "".join(rows)  # below the floor in every variant
