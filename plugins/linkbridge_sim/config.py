"""One direction's impairment settings, checked as a whole (no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from linkbridge.plugin import ConfigError
from linkbridge.plugin.lab import format_rate
from linkbridge_sim.codel import DEFAULT_INTERVAL, DEFAULT_TARGET
from linkbridge_sim.mahimahi import trace_mean_rate

DISTRIBUTIONS = ("uniform", "normal", "pareto", "paretonormal")
DEFAULT_LIMIT = 1000


@dataclass(frozen=True)
class SimConfig:
    """What one side does to the packets it sends. Probabilities are fractions (0.05 = 5%)."""

    mtu: int | None = None
    loss: float = 0.0
    loss_corr: float = 0.0
    gemodel: tuple[float, float, float, float] | None = None  # p, r, 1-h, 1-k
    loss_state: tuple[float, float, float, float, float] | None = None  # p13 p31 p32 p23 p14
    delay: float = 0.0  # seconds
    jitter: float = 0.0  # seconds
    delay_corr: float = 0.0  # weight of the previous jitter draw in the next
    distribution: str = "uniform"
    reorder: float = 0.0
    duplicate: float = 0.0
    corrupt: float = 0.0
    rate: float | None = None  # bits per second
    rate_trace: tuple[int, ...] | None = None  # Mahimahi opportunity times (ms), instead of rate
    overhead: int = 0  # bytes added to every packet by the rate limiter
    limit: int = DEFAULT_LIMIT  # packets held at once (delayed or queued for the rate)
    loss_airtime: bool = False  # a lost packet still takes its transmission time
    limit_bytes: int | None = None  # bytes held at once (besides `limit` packets)
    codel: tuple[float, float] | None = None  # CoDel's target and interval (None: no AQM)

    def describe(self) -> str:
        """A short human summary, e.g. `loss 5% delay 40ms rate 9.60 kbit/s`."""
        parts = []
        if self.mtu:
            parts.append(f"mtu {self.mtu}")
        if self.gemodel:
            parts.append("loss gemodel " + " ".join(f"{v:.4g}%" for v in _pct(self.gemodel)))
        elif self.loss_state:
            parts.append("loss state " + " ".join(f"{v:.4g}%" for v in _pct(self.loss_state)))
        elif self.loss:
            corr = f" corr {self.loss_corr:.4g}" if self.loss_corr else ""
            parts.append(f"loss {self.loss * 100:.4g}%{corr}")
        if self.delay or self.jitter:
            jitter = f"±{self.jitter * 1e3:.4g}ms {self.distribution}" if self.jitter else ""
            jitter += f" corr {self.delay_corr:.4g}" if self.delay_corr else ""
            parts.append(f"delay {self.delay * 1e3:.4g}ms{jitter}")
        for name in ("reorder", "duplicate", "corrupt"):
            value = getattr(self, name)
            if value:
                parts.append(f"{name} {value * 100:.4g}%")
        if self.loss_airtime:
            parts.append("lost packets take airtime")
        if self.limit_bytes:
            parts.append(f"limit {self.limit_bytes} bytes")
        if self.codel:
            parts.append(f"codel target {self.codel[0] * 1e3:g}ms "
                         f"interval {self.codel[1] * 1e3:g}ms")
        if self.rate:
            parts.append(f"rate {format_rate(self.rate)} overhead {self.overhead}")
        if self.rate_trace:
            parts.append(f"rate trace of {len(self.rate_trace)} opportunities per "
                         f"{self.rate_trace[-1]} ms "
                         f"({format_rate(trace_mean_rate(self.rate_trace) or 0.0)} mean) "
                         f"overhead {self.overhead}")
        return " ".join(parts) or "no impairment"


def _pct(values: tuple[float, ...]) -> list[float]:
    return [v * 100 for v in values]


def gemodel_parameters(given: tuple[float, ...]) -> tuple[float, float, float, float]:
    """Fill netem's defaults: r = 1-p, 1-h = 100%, 1-k = 0% (p alone gives Bernoulli loss)."""
    p = given[0]
    defaults = (p, 1.0 - p, 1.0, 0.0)
    full = (*given, *defaults[len(given):])
    return full[0], full[1], full[2], full[3]


def loss_state_parameters(given: tuple[float, ...]) -> tuple[float, float, float, float, float]:
    """Fill netem's defaults: p31 = 1-p13, p32 = 0, p23 = 100%, p14 = 0 (Bernoulli p13)."""
    p13 = given[0]
    defaults = (p13, 1.0 - p13, 0.0, 1.0, 0.0)
    full = (*given, *defaults[len(given):])
    p13, p31, p32, _p23, p14 = full
    if p13 + p14 > 1.0:
        raise ConfigError(f"loss_state: p13 + p14 = {(p13 + p14) * 100:.4g}% exceeds 100%")
    if p31 + p32 > 1.0:
        raise ConfigError(f"loss_state: p31 + p32 = {(p31 + p32) * 100:.4g}% exceeds 100%")
    return full[0], full[1], full[2], full[3], full[4]


def sim_config(owner: str, options: Mapping[str, Any]) -> SimConfig:
    """Build a SimConfig from validated option values, checking how they combine."""
    models = [name for name in ("loss", "gemodel", "loss_state") if options.get(name)]
    if len(models) > 1:
        raise ConfigError(f"{owner}: choose one loss model, not {' and '.join(models)}")
    if options.get("loss_corr") and not options.get("loss"):
        raise ConfigError(f"{owner}: loss_corr needs loss=")
    delay = options.get("delay") or 0.0
    if options.get("reorder") and not delay:
        raise ConfigError(f"{owner}: reorder needs delay= (reordered packets skip the delay)")
    if options.get("distribution") not in (None, "uniform") and not options.get("jitter"):
        raise ConfigError(f"{owner}: distribution needs jitter=")
    if options.get("delay_corr") and not options.get("jitter"):
        raise ConfigError(f"{owner}: delay_corr needs jitter=")
    if options.get("overhead") and not (options.get("rate") or options.get("rate_trace")):
        raise ConfigError(f"{owner}: overhead needs rate= or rate_trace=")
    if options.get("rate") and options.get("rate_trace"):
        raise ConfigError(f"{owner}: choose rate= or rate_trace=, not both")
    codel = options.get("codel")
    for name in ("codel_target", "codel_interval"):
        if options.get(name) is not None and not codel:
            raise ConfigError(f"{owner}: {name} needs codel=on")
    if codel and not (options.get("rate") or options.get("duplex") == "half"):
        raise ConfigError(f"{owner}: codel needs a queue that drains at a rate: rate= "
                          "(or duplex=half)")
    try:
        gemodel = options.get("gemodel")
        loss_state = options.get("loss_state")
        return SimConfig(
            mtu=options.get("mtu"),
            loss=options.get("loss") or 0.0,
            loss_corr=options.get("loss_corr") or 0.0,
            gemodel=gemodel_parameters(gemodel) if gemodel else None,
            loss_state=loss_state_parameters(loss_state) if loss_state else None,
            delay=delay,
            jitter=options.get("jitter") or 0.0,
            delay_corr=options.get("delay_corr") or 0.0,
            distribution=options.get("distribution") or "uniform",
            reorder=options.get("reorder") or 0.0,
            duplicate=options.get("duplicate") or 0.0,
            corrupt=options.get("corrupt") or 0.0,
            rate=options.get("rate"),
            rate_trace=options.get("rate_trace"),
            overhead=options.get("overhead") or 0,
            limit=options.get("limit") or DEFAULT_LIMIT,
            loss_airtime=bool(options.get("loss_airtime")),
            limit_bytes=options.get("limit_bytes"),
            codel=(options.get("codel_target") or DEFAULT_TARGET,
                   options.get("codel_interval") or DEFAULT_INTERVAL) if codel else None,
        )
    except ConfigError as exc:
        raise ConfigError(f"{owner}: {exc}") from None
