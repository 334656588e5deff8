"""How long the lab waits for an echo reply, from what the link says it is configured to do."""

from __future__ import annotations

import pytest

from linkbridge.lab.compare import MIN_PING_TIMEOUT, PING_TIMEOUT, ping_timeout
from linkbridge.plugin.lab import LabDirection


def test_a_link_of_unknown_figures_gets_the_full_timeout() -> None:
    assert ping_timeout(None, 84) == PING_TIMEOUT


def test_a_fast_lossy_link_waits_the_minimum_not_a_second_per_loss() -> None:
    lossy = LabDirection(loss=0.05)
    assert ping_timeout((lossy, lossy), 84) == MIN_PING_TIMEOUT


def test_a_slow_link_waits_three_round_trips_and_margin_up_to_the_full_timeout() -> None:
    radio = LabDirection(delay=0.04, rate=9600)  # 84 bytes: 40 ms + 70 ms each way
    assert ping_timeout((radio, radio), 84) == pytest.approx(3 * 0.22 + 0.2)
    crawl = LabDirection(delay=0.5)
    assert ping_timeout((crawl, crawl), 84) == PING_TIMEOUT
