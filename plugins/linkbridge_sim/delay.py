"""Delay with jitter: `delay + jitter * X`, X a zero-mean unit-variance draw of the chosen shape.

`uniform` follows netem (X uniform on [-1, 1], so jitter is the half-width); the others are
standardised (mean 0, standard deviation 1) so `jitter` is the standard deviation and the mean
delay stays `delay` whatever the shape, unless draws below zero are clamped to zero.
"""

from __future__ import annotations

import math
import random

PARETO_SHAPE = 3.0  # netem's pareto table uses alpha = 3
_PARETO_MEAN = PARETO_SHAPE / (PARETO_SHAPE - 1.0)
_PARETO_SD = math.sqrt(PARETO_SHAPE / ((PARETO_SHAPE - 1.0) ** 2 * (PARETO_SHAPE - 2.0)))
_MIX = (0.25, 0.75)  # paretonormal: a quarter normal, three quarters pareto, as in netem
_MIX_NORM = math.hypot(*_MIX)


def standard_draw(distribution: str, rng: random.Random) -> float:
    """One draw of X for `distribution`; exactly one or two calls on `rng`."""
    if distribution == "uniform":
        return rng.uniform(-1.0, 1.0)
    if distribution == "normal":
        return rng.gauss(0.0, 1.0)
    if distribution == "pareto":
        return _standard_pareto(rng)
    if distribution == "paretonormal":
        return (_MIX[0] * rng.gauss(0.0, 1.0) + _MIX[1] * _standard_pareto(rng)) / _MIX_NORM
    raise ValueError(f"unknown distribution {distribution!r}")


def _standard_pareto(rng: random.Random) -> float:
    value: float = (1.0 - rng.random()) ** (-1.0 / PARETO_SHAPE)  # Pareto with scale 1
    return (value - _PARETO_MEAN) / _PARETO_SD


class DelayModel:
    """Samples one packet's delay in seconds (never negative).

    With `correlation` c the draws form an AR(1) series, X_n = c X_n-1 + sqrt(1 - c^2) Z_n:
    consecutive delays are alike, while the mean and the spread of X stay those of Z (the
    shape tends toward normal as c grows).
    """

    def __init__(self, delay: float, jitter: float, distribution: str,
                 correlation: float = 0.0) -> None:
        self.delay = delay
        self.jitter = jitter
        self.distribution = distribution
        self.correlation = correlation
        self._innovation = math.sqrt(1.0 - correlation * correlation)
        self._last = 0.0

    def sample(self, rng: random.Random) -> float:
        if not self.jitter:
            return self.delay
        draw = standard_draw(self.distribution, rng)
        if self.correlation:
            draw = self._last = self.correlation * self._last + self._innovation * draw
        return max(0.0, self.delay + self.jitter * draw)
