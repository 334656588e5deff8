"""Loss models: correlated random, Gilbert-Elliott and netem's 4-state Markov chain.

Each model draws from the `random.Random` it is given, once per packet in a fixed order, and
knows its analytic stationary loss rate.
"""

from __future__ import annotations

import random
from typing import Protocol

from linkbridge_sim.config import SimConfig


class LossModel(Protocol):
    def lost(self, rng: random.Random) -> bool:
        """Decide whether the next packet is lost (advancing the model's state)."""

    @property
    def stationary_loss(self) -> float:
        """The long-run fraction of packets lost."""


class NoLoss:
    def lost(self, rng: random.Random) -> bool:
        return False

    @property
    def stationary_loss(self) -> float:
        return 0.0


class RandomLoss:
    """Bernoulli loss with probability `p`; with `correlation` c the previous outcome repeats
    with probability c, else a fresh draw decides. Unlike netem's correlation this keeps the
    loss rate at exactly `p` (and makes the lag-1 autocorrelation c)."""

    def __init__(self, p: float, correlation: float = 0.0) -> None:
        self.p = p
        self.correlation = correlation
        self._last = False

    def lost(self, rng: random.Random) -> bool:
        if self.correlation and rng.random() < self.correlation:
            return self._last
        self._last = rng.random() < self.p
        return self._last

    @property
    def stationary_loss(self) -> float:
        return self.p


class GilbertElliott:
    """Two states, Good and Bad: loss with probability 1-k in Good and 1-h in Bad; after each
    packet Good -> Bad with probability p and Bad -> Good with probability r."""

    def __init__(self, p: float, r: float, one_minus_h: float, one_minus_k: float) -> None:
        self.p, self.r = p, r
        self.loss_bad, self.loss_good = one_minus_h, one_minus_k
        self.bad = False

    def lost(self, rng: random.Random) -> bool:
        lost = rng.random() < (self.loss_bad if self.bad else self.loss_good)
        self.bad = rng.random() < (1.0 - self.r if self.bad else self.p)
        return lost

    @property
    def stationary_loss(self) -> float:
        if self.p + self.r == 0:
            return self.loss_good  # never leaves the Good state it starts in
        bad = self.p / (self.p + self.r)
        return bad * self.loss_bad + (1.0 - bad) * self.loss_good


class FourState:
    """netem's `loss state` model (Salsano et al.): 1 = reception in a gap, 2 = reception in a
    burst, 3 = loss in a burst, 4 = isolated loss. Each packet moves the chain one step and is
    lost when it lands in state 3 or 4."""

    def __init__(self, p13: float, p31: float, p32: float, p23: float, p14: float) -> None:
        self.p13, self.p31, self.p32, self.p23, self.p14 = p13, p31, p32, p23, p14
        self.state = 1

    def lost(self, rng: random.Random) -> bool:
        u = rng.random()
        if self.state == 1:
            self.state = 3 if u < self.p13 else 4 if u < self.p13 + self.p14 else 1
        elif self.state == 2:
            self.state = 3 if u < self.p23 else 1
        elif self.state == 3:
            self.state = 1 if u < self.p31 else 2 if u < self.p31 + self.p32 else 3
        else:
            self.state = 1
        return self.state in (3, 4)

    @property
    def stationary_loss(self) -> float:
        # Balance equations: pi4 = pi1 p14, pi2 = pi3 p32, pi3 (p31 + p32 (1 - p23)) = pi1 p13.
        leave_burst = self.p31 + self.p32 * (1.0 - self.p23)
        if leave_burst == 0:
            return 1.0 if self.p13 else self.p14 / (1.0 + self.p14)
        pi3 = self.p13 / leave_burst
        pi2 = pi3 * self.p32
        pi4 = self.p14
        return (pi3 + pi4) / (1.0 + pi2 + pi3 + pi4)


def loss_model(config: SimConfig) -> LossModel:
    """The loss model a configuration names."""
    if config.gemodel:
        return GilbertElliott(*config.gemodel)
    if config.loss_state:
        return FourState(*config.loss_state)
    if config.loss:
        return RandomLoss(config.loss, config.loss_corr)
    return NoLoss()
