"""Statistics of the sim: models over 100k packets with fixed seeds: loss rates against the
configured or analytic stationary rate (+-0.5 percentage points), delay distributions."""

from __future__ import annotations

import random
import statistics

import pytest
from linkbridge_sim.delay import DelayModel, standard_draw
from linkbridge_sim.loss import FourState, GilbertElliott, LossModel, RandomLoss

PACKETS = 100_000
TOLERANCE = 0.005  # 0.5 percentage points


def loss_rate(model: LossModel, seed: int) -> tuple[float, list[bool]]:
    rng = random.Random(seed)
    outcomes = [model.lost(rng) for _ in range(PACKETS)]
    return sum(outcomes) / PACKETS, outcomes


def mean_burst(outcomes: list[bool]) -> float:
    bursts, run = [], 0
    for lost in outcomes:
        if lost:
            run += 1
        elif run:
            bursts.append(run)
            run = 0
    return sum(bursts) / len(bursts)


@pytest.mark.parametrize("p", [0.01, 0.05, 0.2])
def test_random_loss_matches_configured_rate(p: float) -> None:
    measured, outcomes = loss_rate(RandomLoss(p), seed=1)
    assert abs(measured - p) <= TOLERANCE
    assert mean_burst(outcomes) == pytest.approx(1 / (1 - p), rel=0.1)  # memoryless


def test_correlated_random_loss_keeps_the_rate_and_lengthens_bursts() -> None:
    measured, outcomes = loss_rate(RandomLoss(0.05, correlation=0.5), seed=2)
    assert abs(measured - 0.05) <= TOLERANCE
    # a loss repeats with probability c + (1 - c) p, so bursts last 1 / (1 - that) on average
    repeat = 0.5 + 0.5 * 0.05
    assert mean_burst(outcomes) == pytest.approx(1 / (1 - repeat), rel=0.1)


def test_gilbert_elliott_stationary_rate_formula() -> None:
    model = GilbertElliott(p=0.01, r=0.1, one_minus_h=0.7, one_minus_k=0.001)
    bad = 0.01 / 0.11
    assert model.stationary_loss == pytest.approx(bad * 0.7 + (1 - bad) * 0.001)


@pytest.mark.parametrize("parameters", [
    (0.01, 0.1, 0.7, 0.001),
    (0.05, 0.3, 1.0, 0.0),  # simple Gilbert
    (0.002, 0.05, 0.5, 0.01),
])
def test_gilbert_elliott_loss_matches_the_analytic_stationary_rate(
        parameters: tuple[float, float, float, float]) -> None:
    model = GilbertElliott(*parameters)
    measured, _ = loss_rate(model, seed=3)
    assert abs(measured - GilbertElliott(*parameters).stationary_loss) <= TOLERANCE


def test_gilbert_elliott_with_p_only_defaults_is_bernoulli() -> None:
    from linkbridge_sim.config import gemodel_parameters

    model = GilbertElliott(*gemodel_parameters((0.05,)))
    assert model.stationary_loss == pytest.approx(0.05)
    _, outcomes = loss_rate(model, seed=4)
    assert mean_burst(outcomes) == pytest.approx(1 / 0.95, rel=0.1)


def test_four_state_stationary_rate_formula() -> None:
    p13, p31, p32, p23, p14 = 0.02, 0.3, 0.1, 0.4, 0.01
    # pi4 = pi1 p14; pi2 = pi3 p32; pi3 (p31 + p32 (1 - p23)) = pi1 p13; with pi1 = 1:
    pi3 = p13 / (p31 + p32 * (1 - p23))
    expected = (pi3 + p14) / (1 + pi3 * p32 + pi3 + p14)
    assert FourState(p13, p31, p32, p23, p14).stationary_loss == pytest.approx(expected)


@pytest.mark.parametrize("parameters", [
    (0.02, 0.3, 0.1, 0.4, 0.01),
    (0.05, 0.95, 0.0, 1.0, 0.0),  # the defaults for p13 = 5%: Bernoulli
    (0.001, 0.2, 0.3, 0.6, 0.02),
])
def test_four_state_loss_matches_the_analytic_stationary_rate(
        parameters: tuple[float, float, float, float, float]) -> None:
    measured, _ = loss_rate(FourState(*parameters), seed=5)
    assert abs(measured - FourState(*parameters).stationary_loss) <= TOLERANCE


@pytest.mark.parametrize("distribution", ["uniform", "normal", "pareto", "paretonormal"])
def test_jitter_draws_are_standardised(distribution: str) -> None:
    rng = random.Random(6)
    draws = [standard_draw(distribution, rng) for _ in range(PACKETS)]
    assert statistics.fmean(draws) == pytest.approx(0.0, abs=0.02)
    expected_sd = 1 / 3 ** 0.5 if distribution == "uniform" else 1.0
    tolerance = 0.02 if distribution in ("uniform", "normal") else 0.15  # pareto: heavy tail
    assert statistics.pstdev(draws) == pytest.approx(expected_sd, abs=tolerance)


def test_uniform_jitter_stays_within_its_half_width() -> None:
    model, rng = DelayModel(0.040, 0.010, "uniform"), random.Random(7)
    delays = [model.sample(rng) for _ in range(PACKETS)]
    assert 0.030 <= min(delays) < 0.0301 and 0.0499 < max(delays) <= 0.050
    assert statistics.fmean(delays) == pytest.approx(0.040, abs=0.0001)


def test_pareto_delay_has_a_long_right_tail_and_the_configured_mean() -> None:
    model, rng = DelayModel(0.100, 0.020, "pareto"), random.Random(8)
    delays = [model.sample(rng) for _ in range(PACKETS)]
    assert statistics.fmean(delays) == pytest.approx(0.100, abs=0.0005)
    assert max(delays) - 0.100 > 4 * (0.100 - min(delays))


def test_delay_never_goes_negative() -> None:
    model, rng = DelayModel(0.001, 0.010, "normal"), random.Random(9)
    assert min(model.sample(rng) for _ in range(10_000)) == 0.0


def test_correlated_delay_keeps_mean_and_spread_and_correlates_neighbours() -> None:
    model, rng = DelayModel(0.100, 0.010, "normal", correlation=0.8), random.Random(10)
    delays = [model.sample(rng) for _ in range(PACKETS)]
    assert statistics.fmean(delays) == pytest.approx(0.100, abs=0.0005)
    assert statistics.pstdev(delays) == pytest.approx(0.010, rel=0.05)
    assert statistics.correlation(delays[:-1], delays[1:]) == pytest.approx(0.8, abs=0.02)
    plain, rng = DelayModel(0.100, 0.010, "normal"), random.Random(10)
    independent = [plain.sample(rng) for _ in range(PACKETS)]
    assert abs(statistics.correlation(independent[:-1], independent[1:])) < 0.02
