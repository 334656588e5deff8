"""Pictures of a lab run: RTT over time and throughput over time per direction, as SVG.

`LabSeries` holds what the lab measured (ping round trips by send time, the tunnel devices'
delivered bytes sampled every SAMPLE_INTERVAL) and, for a link that says what it is configured
to do (`sim:`), the configured RTT and rates, drawn as dashed reference lines. `series_json()`
is the same data for `--plot-data`; `svg()` draws it with no plotting library.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

SAMPLE_INTERVAL = 0.1  # seconds between counter samples
DIRECTIONS = ("A -> B", "B -> A")
COLOURS = {"rtt": "#1f77b4", "A -> B": "#2ca02c", "B -> A": "#d62728", "lost": "#d62728"}
WIDTH, PANEL, MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, GAP = 780, 220, 96, 20, 40, 70


@dataclass
class LabSeries:
    """Time series of one lab run; times are seconds since the lab started measuring."""

    rtt_ms: list[tuple[float, float | None]] = field(default_factory=list)  # None: lost
    throughput_bps: dict[str, list[tuple[float, float]]] = field(
        default_factory=lambda: {d: [] for d in DIRECTIONS})
    samples: int = 0  # counter samples taken (throughput points are one fewer)
    configured_rtt_ms: float | None = None
    configured_rate_bps: dict[str, float] = field(default_factory=dict)


def throughput(samples: list[tuple[float, int, int]]) -> dict[str, list[tuple[float, float]]]:
    """bit/s per direction between consecutive (time, bytes delivered to B, to A) samples,
    placed at the end of each interval."""
    found: dict[str, list[tuple[float, float]]] = {d: [] for d in DIRECTIONS}
    for (t0, b0, a0), (t1, b1, a1) in itertools.pairwise(samples):
        if t1 > t0:
            found["A -> B"].append((t1, max(0, b1 - b0) * 8 / (t1 - t0)))
            found["B -> A"].append((t1, max(0, a1 - a0) * 8 / (t1 - t0)))
    return found


class CounterSampler:
    """Samples `read()` -> (bytes delivered to B, to A) every `interval` in a thread."""

    def __init__(self, read: Callable[[], tuple[int, int]], start: float,
                 interval: float = SAMPLE_INTERVAL) -> None:
        self._read = read
        self._start = start
        self._interval = interval
        self.samples: list[tuple[float, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lab-sampler", daemon=True)

    def _sample(self) -> None:
        to_b, to_a = self._read()
        self.samples.append((time.perf_counter() - self._start, to_b, to_a))

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def __enter__(self) -> CounterSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def series_json(series: LabSeries) -> dict[str, Any]:
    """What `--plot-data` writes."""
    return {
        "samples": series.samples,
        "sample_interval_s": SAMPLE_INTERVAL,
        "rtt_ms": [{"t": round(t, 4), "ms": None if ms is None else round(ms, 3)}
                   for t, ms in series.rtt_ms],
        "throughput_bps": {d: [{"t": round(t, 4), "bps": round(v, 1)} for t, v in points]
                           for d, points in series.throughput_bps.items()},
        "configured": {"rtt_ms": series.configured_rtt_ms,
                       "rate_bps": dict(series.configured_rate_bps)},
    }


def nice_ceiling(value: float, steps: tuple[float, ...] = (1, 2, 2.5, 5)) -> float:
    """The smallest of `steps` times a power of ten that is >= value (> 0)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return float(next(step * power for step in (*steps, 10) if step * power >= value * 0.9999))


def _si(value: float, unit: str) -> str:
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.4g} {prefix}{unit}"
    return f"{value:.4g} {unit}"


@dataclass(frozen=True)
class _Panel:
    top: float
    x_max: float
    y_max: float

    def x(self, t: float) -> float:
        return MARGIN_LEFT + (WIDTH - MARGIN_LEFT - MARGIN_RIGHT) * t / self.x_max

    def y(self, value: float) -> float:
        return self.top + PANEL * (1 - min(value, self.y_max) / self.y_max)


def axis_limit(value: float) -> float:
    """An axis end whose quarters (the grid lines) are round numbers."""
    return 4 * nice_ceiling(value / 4, (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8))


def _axes(panel: _Panel, title: str, label: Callable[[float], str]) -> list[str]:
    right = WIDTH - MARGIN_RIGHT
    parts = [f'<text x="{MARGIN_LEFT}" y="{panel.top - 10}" class="title">{escape(title)}</text>',
             f'<rect x="{MARGIN_LEFT}" y="{panel.top}" width="{right - MARGIN_LEFT}" '
             f'height="{PANEL}" class="frame"/>']
    for i in range(5):
        value = panel.y_max * i / 4
        y = panel.y(value)
        parts.append(f'<line x1="{MARGIN_LEFT}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" '
                     f'class="grid"/><text x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" '
                     f'class="ylabel">{escape(label(value))}</text>')
        t = panel.x_max * i / 4
        x = panel.x(t)
        parts.append(f'<text x="{x:.1f}" y="{panel.top + PANEL + 16}" '
                     f'class="xlabel">{t:.3g} s</text>')
    return parts


def _polyline(panel: _Panel, name: str, points: list[tuple[float, float]]) -> str:
    coords = " ".join(f"{panel.x(t):.1f},{panel.y(v):.1f}" for t, v in points)
    return (f'<polyline class="series" data-series="{escape(name)}" '
            f'stroke="{COLOURS[name]}" points="{coords}"/>')


def _reference(panel: _Panel, name: str, value: float, text: str) -> str:
    y = panel.y(value)
    return (f'<line class="reference" data-reference="{escape(name)}" x1="{MARGIN_LEFT}" '
            f'y1="{y:.1f}" x2="{WIDTH - MARGIN_RIGHT}" y2="{y:.1f}" stroke="{COLOURS[name]}"/>'
            f'<text x="{WIDTH - MARGIN_RIGHT - 4}" y="{y - 4:.1f}" class="reflabel" '
            f'fill="{COLOURS[name]}">{escape(text)}</text>')


def _legend(top: float, names: Mapping[str, str]) -> str:
    items = []
    for index, (key, text) in enumerate(names.items()):
        x = MARGIN_LEFT + 10 + 170 * index
        items.append(f'<line x1="{x}" y1="{top}" x2="{x + 20}" y2="{top}" stroke="{COLOURS[key]}" '
                     f'stroke-width="2"/><text x="{x + 26}" y="{top + 4}">{escape(text)}</text>')
    return "".join(items)


STYLE = """<style>
text { font: 12px sans-serif; fill: #222 }
.title { font-weight: bold; font-size: 14px }
.ylabel { text-anchor: end } .xlabel { text-anchor: middle }
.reflabel { text-anchor: end; font-size: 11px }
.frame { fill: none; stroke: #888 } .grid { stroke: #ddd }
.series { fill: none; stroke-width: 1.5 } .reference { stroke-dasharray: 6 4; stroke-width: 1.2 }
</style>"""


def _squeeze(title: str) -> str:
    """A smaller font for a long title (a long link URL), to fit the picture's width."""
    room = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    size = room / (len(title) * 0.66)  # bold sans-serif: under 0.66 em a character
    return f' style="font-size: {size:.1f}px"' if size < 14 else ""


def svg(series: LabSeries, title: str) -> str:
    """The picture: RTT panel above, throughput panel below, configured figures dashed."""
    times = [t for t, _ in series.rtt_ms] + [t for points in series.throughput_bps.values()
                                             for t, _ in points]
    x_max = axis_limit(max(times, default=1.0))
    rtts = [ms for _, ms in series.rtt_ms if ms is not None]
    rtt_panel = _Panel(MARGIN_TOP + 20, x_max, axis_limit(max(
        [*rtts, series.configured_rtt_ms or 0.0], default=1.0) * 1.1))
    rates = [v for points in series.throughput_bps.values() for _, v in points]
    rate_panel = _Panel(rtt_panel.top + PANEL + GAP, x_max, axis_limit(max(
        [*rates, *series.configured_rate_bps.values()], default=1.0) * 1.1))
    height = rate_panel.top + PANEL + 60
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
             f'viewBox="0 0 {WIDTH} {height}">', STYLE,
             f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
             f'<text x="{MARGIN_LEFT}" y="20" class="title"{_squeeze(title)}>'
             f'{escape(title)}</text>']
    parts += _axes(rtt_panel, "round-trip time (ping)", lambda v: f"{v:.4g} ms")
    parts.append(_polyline(rtt_panel, "rtt", [(t, ms) for t, ms in series.rtt_ms
                                               if ms is not None]))
    for t, ms in series.rtt_ms:
        if ms is None:
            x, y = rtt_panel.x(t), rtt_panel.top + 6
            parts.append(f'<path class="lost" d="M{x - 4:.1f},{y - 4} l8,8 m0,-8 l-8,8" '
                         f'stroke="{COLOURS["lost"]}"/>')
    if series.configured_rtt_ms is not None:
        parts.append(_reference(rtt_panel, "rtt", series.configured_rtt_ms,
                                f"configured {series.configured_rtt_ms:.3g} ms"))
    parts += _axes(rate_panel, "throughput (IP bytes delivered)", lambda v: _si(v, "bit/s"))
    labelled: set[float] = set()
    for direction in DIRECTIONS:
        parts.append(_polyline(rate_panel, direction, series.throughput_bps.get(direction, [])))
        rate = series.configured_rate_bps.get(direction)
        if rate is not None:
            same = [d for d, r in series.configured_rate_bps.items() if r == rate]
            text = "" if rate in labelled else f"configured {', '.join(same)}: {_si(rate, 'bit/s')}"
            labelled.add(rate)
            parts.append(_reference(rate_panel, direction, rate, text))
    parts.append(_legend(height - 20, {"rtt": "RTT (x: lost)", "A -> B": "A -> B",
                                       "B -> A": "B -> A"}))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
