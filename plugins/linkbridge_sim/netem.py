"""The tc-netem arguments that configure the same impairment as a SimConfig (for cross-checks).

The MTU cap has no netem equivalent (set the device MTU instead), nor has `rate_trace` (netem
has no trace-driven rate; it is left out), and `loss_corr` differs in meaning: netem's
correlation also shifts the loss rate, ours keeps it at `loss`.
"""

from __future__ import annotations

from linkbridge_sim.config import SimConfig


def _pct(value: float) -> str:
    return f"{value * 100:.6g}%"


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f}us"


def netem_arguments(config: SimConfig) -> list[str]:
    """`tc qdisc add dev DEV root netem ...` arguments for `config`, e.g.
    ['limit', '1000', 'delay', '40000us', 'loss', 'random', '5%']."""
    args = ["limit", str(config.limit)]
    if config.delay or config.jitter:
        args += ["delay", _us(config.delay)]
        if config.jitter:
            args.append(_us(config.jitter))
            if config.delay_corr:
                args.append(_pct(config.delay_corr))
            if config.distribution != "uniform":  # netem's default, and tc has no table for it
                args += ["distribution", config.distribution]
    if config.gemodel:
        args += ["loss", "gemodel", *map(_pct, config.gemodel)]
    elif config.loss_state:
        args += ["loss", "state", *map(_pct, config.loss_state)]
    elif config.loss:
        args += ["loss", "random", _pct(config.loss)]
        if config.loss_corr:
            args.append(_pct(config.loss_corr))
    for name in ("duplicate", "corrupt", "reorder"):
        value = getattr(config, name)
        if value:
            args += [name, _pct(value)]
    if config.rate:
        args += ["rate", f"{config.rate:.0f}bit"]
        if config.overhead:
            args += ["packetoverhead", str(config.overhead)]
    return args
