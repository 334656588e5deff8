"""ops/signals.py: SIGTERM held over a step that must not be cut in two."""

from __future__ import annotations

import signal

import pytest

from linkbridge.ops.signals import Shutdown, shutdown_on_signals, signals_held

pytestmark = pytest.mark.usefixtures("signal_handlers")  # tests/conftest.py


def test_a_signal_in_the_held_block_is_raised_when_it_ends() -> None:
    steps = []
    with shutdown_on_signals(), pytest.raises(Shutdown) as raised:
        with signals_held():
            signal.raise_signal(signal.SIGTERM)
            steps.append("after the signal")
        steps.append("after the block")
    assert steps == ["after the signal"]
    assert raised.value.signum == signal.SIGTERM


def test_the_first_of_two_held_signals_is_the_one_raised() -> None:
    with shutdown_on_signals(), pytest.raises(Shutdown) as raised, signals_held():
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGTERM)
    assert raised.value.signum == signal.SIGINT


def test_without_a_signal_the_handlers_are_as_before() -> None:
    with shutdown_on_signals():
        before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        with signals_held():
            pass
        assert {sig: signal.getsignal(sig) for sig in before} == before
