"""Properties of the sim: model for any configuration and packet stream (hypothesis)."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from linkbridge_sim.config import DISTRIBUTIONS, SimConfig
from linkbridge_sim.decisions import RandomDecisions, ReplayDecisions
from linkbridge_sim.impairment import Impairment

fractions = st.floats(0.0, 1.0)
configs = st.builds(
    SimConfig,
    mtu=st.none() | st.integers(68, 1500),
    loss=fractions,
    loss_corr=fractions,
    delay=st.floats(0.0, 0.5),
    jitter=st.floats(0.0, 0.1),
    delay_corr=st.floats(0.0, 1.0),
    distribution=st.sampled_from(DISTRIBUTIONS),
    reorder=fractions,
    duplicate=fractions,
    corrupt=fractions,
    rate=st.none() | st.floats(1000.0, 1e9),
    overhead=st.integers(-20, 100),
    limit=st.integers(1, 50),
)
streams = st.lists(st.tuples(st.binary(min_size=0, max_size=1600), st.floats(0.0, 0.05)),
                   max_size=60)


Run = tuple[list[dict[str, Any]], list[list[tuple[float, bytes]]]]


def play(model: Impairment, stream: list[tuple[bytes, float]]) -> Run:
    """Offer the stream; the trace records and the releases of each packet."""
    now = 0.0
    records: list[dict[str, Any]] = []
    releases: list[list[tuple[float, bytes]]] = []
    for packet, gap in stream:
        now += gap
        outcome = model.offer(packet, now)
        for release in outcome.releases:
            assert release.at >= now
            assert len(release.packet) == len(packet)
        assert len(outcome.releases) <= 2
        assert set(outcome.drops) <= {"mtu", "loss", "queue_full"}
        records.append(outcome.to_record())
        releases.append([(r.at, r.packet) for r in outcome.releases])
    return records, releases


@given(configs, streams, st.integers(0, 2**32))
def test_any_run_is_sane_repeatable_and_replayable(config: SimConfig,
                                                   stream: list[tuple[bytes, float]],
                                                   seed: int) -> None:
    first = play(Impairment(config, RandomDecisions(config, random.Random(seed))), stream)
    again = play(Impairment(config, RandomDecisions(config, random.Random(seed))), stream)
    assert first == again
    replayed = play(Impairment(config, ReplayDecisions(first[0])), stream)
    assert replayed == first
