"""`linkbridge lab --plot FILE.svg --plot-data FILE.json`: the picture of a real lab run."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

SVG = "{http://www.w3.org/2000/svg}"


def test_plot_of_a_sim_lab_has_every_series_and_the_configured_figures(
        root: None, tmp_path: Path) -> None:
    picture, data = tmp_path / "lab.svg", tmp_path / "lab.json"
    count = 8
    done = subprocess.run(
        [sys.executable, "-m", "linkbridge", "lab", "--link", "sim:?delay=5ms&rate=4mbit&seed=1",
         "--count", str(count), "--bytes", "400000", "--plot", str(picture),
         "--plot-data", str(data)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    series = json.loads(data.read_text())
    rtts = series["rtt_ms"]
    assert len(rtts) == count  # one point per echo request, lost ones as null
    assert [point["t"] for point in rtts] == sorted(point["t"] for point in rtts)
    received = [point["ms"] for point in rtts if point["ms"] is not None]
    assert len(received) >= count - 1
    assert sum(received) / len(received) > 8  # a mean delay of 5 ms each way
    assert series["samples"] >= 5
    for direction in ("A -> B", "B -> A"):
        assert len(series["throughput_bps"][direction]) == series["samples"] - 1
    # the transfer ran at about the configured 4 Mbit/s: the median of the samples while it ran
    # (a single sample may be far above: after the host stalled the sim, packets whose send time
    # passed meanwhile go out at once, as a delay line does)
    running = sorted(point["bps"] for point in series["throughput_bps"]["A -> B"]
                     if point["bps"] > 0.5e6)
    assert running and 1e6 < running[len(running) // 2] < 6e6, running
    assert series["configured"]["rate_bps"] == {"A -> B": 4e6, "B -> A": 4e6}
    assert 10 < series["configured"]["rtt_ms"] < 12

    svg = ET.parse(picture).getroot()
    lines = {line.get("data-series"): line.get("points", "").split()
             for line in svg.iter(f"{SVG}polyline")}
    assert len(lines["rtt"]) == len(received)
    assert len(lines["A -> B"]) == len(lines["B -> A"]) == series["samples"] - 1
    references = {line.get("data-reference") for line in svg.iter(f"{SVG}line")} - {None}
    assert references == {"rtt", "A -> B", "B -> A"}


def test_unwritable_plot_path_fails_before_the_lab(root: None, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "linkbridge", "lab", "--plot",
                           str(tmp_path / "missing" / "lab.svg")],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"linkbridge: error: cannot write {tmp_path}/missing/lab.svg: "
                                   "its directory is missing or not writable")
