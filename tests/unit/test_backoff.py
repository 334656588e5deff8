"""The backoff policy: delays that double up to a limit, due times from the caller's clock, and a
reset after a success."""

from __future__ import annotations

import pytest

from linkbridge.wire.backoff import Backoff


def test_delays_grow_by_the_factor_up_to_the_limit() -> None:
    backoff = Backoff(0.05, 0.3)
    assert [backoff.failed(10.0) for _ in range(5)] == [0.05, 0.1, 0.2, 0.3, 0.3]


def test_wait_counts_down_on_the_callers_clock() -> None:
    backoff = Backoff(1.0, 60.0)
    assert backoff.wait(100.0) == 0.0  # never failed: due at once
    backoff.failed(100.0)
    assert backoff.wait(100.25) == 0.75
    assert backoff.wait(101.0) == 0.0
    assert backoff.failed(101.0) == 2.0
    assert backoff.retry_at == 103.0


def test_reset_after_a_success_starts_from_the_first_delay() -> None:
    backoff = Backoff(0.5, 8.0, factor=3.0)
    backoff.failed(0.0)
    backoff.failed(0.5)
    backoff.reset()
    assert backoff.wait(2.0) == 0.0
    assert backoff.failed(2.0) == 0.5


@pytest.mark.parametrize(("first", "limit", "factor"), [(0, 1, 2), (2, 1, 2), (1, 2, 0.5)])
def test_nonsense_settings_are_refused(first: float, limit: float, factor: float) -> None:
    with pytest.raises(ValueError, match="backoff needs"):
        Backoff(first, limit, factor)
