"""The time per packet of a burst that the VM's netem rate case measures (tests/helpers)."""

from __future__ import annotations

import pytest

from tests.helpers.distributions import median_gap

STEADY = [3.0 + 10.0 * i for i in range(60)]


def test_a_steady_burst_gives_its_spacing() -> None:
    assert median_gap(STEADY) == pytest.approx(10.0)


def test_a_sender_stalled_midway_moves_one_gap_not_the_figure() -> None:
    times = STEADY[:30] + [t + 21.0 for t in STEADY[30:]]
    assert (times[-1] - times[0]) / 59 > 10.3  # the span from first to last is 3% off
    assert median_gap(times) == pytest.approx(10.0)


def test_packets_held_back_then_released_at_once() -> None:
    times = STEADY[:20] + [STEADY[24]] * 5 + STEADY[25:]
    assert median_gap(times) == pytest.approx(10.0)
