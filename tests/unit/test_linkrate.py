"""Each link's rate and round trip measured from the probes' reports (wire/linkrate.py), and
balance's spreader following them (wire/multilink.py): on a simulated clock."""

from __future__ import annotations

import pytest

from linkbridge.wire import drops
from linkbridge.wire.linkrate import GROWTH, MIN_BYTES, NO_ECHO, RATE_SAMPLES, LinkMeter, Report
from linkbridge.wire.multilink import PROBE_FRAME, Parsed, Spreader, parse, probe_frame

INTERVAL = 0.2  # seconds between probes
CEILING = 100e6


class Link:
    """One link between A and B: A gives it bytes, B receives what the link delivers; each
    step A probes, B answers with its report `one_way` later, and A takes it."""

    def __init__(self) -> None:
        self.a, self.b = LinkMeter(CEILING), LinkMeter(CEILING)
        self.now = 10.0

    def step(self, given: int, delivered: int, one_way: float = 0.001) -> float | None:
        """A's measured rate after a probe interval in which it gave the link `given` bytes
        and B received `delivered` of them."""
        self.now += INTERVAL
        self.b.take(self.a.report(self.now), self.now + one_way)
        self.a.sent += given
        self.b.received += delivered
        self.a.take(self.b.report(self.now + one_way), self.now + 2 * one_way)
        return self.a.rate


def per_step(bits: float) -> int:
    return round(bits * INTERVAL / 8)


def test_a_probe_carries_its_report_and_a_bare_probe_still_parses() -> None:
    report = Report(stamp=123456, echo=99, held=25, received=(1 << 32) - 1)
    assert Report.unpack(report.pack()) == report
    assert parse(probe_frame(report)) == Parsed(None, b"", report)
    assert parse(PROBE_FRAME) == Parsed(None, b"")
    assert parse(probe_frame(report)[:-1]) == drops.LINK_PROBE_MALFORMED


def test_the_round_trip_is_the_echoed_stamp_less_the_time_the_peer_held_it() -> None:
    link = Link()
    assert link.a.round_trip is None
    assert link.b.report(1.0).held == NO_ECHO  # nothing to echo yet
    link.step(0, 0, one_way=0.004)
    assert link.a.round_trip == pytest.approx(0.008, abs=2e-4)
    link.step(0, 0, one_way=0.03)
    assert link.a.round_trip == pytest.approx(0.008, abs=2e-4)  # the least of them


def overfed(link: Link) -> float | None:
    """Three reports of a link given 4 Mbit/s that delivers 2: the first compares nothing,
    the second is the backlog's first (the link may have idled before it), the third counts."""
    assert link.step(per_step(4e6), per_step(2e6)) is None
    assert link.step(per_step(4e6), per_step(2e6)) is None
    return link.step(per_step(4e6), per_step(2e6))


def test_a_link_that_delivers_less_than_it_was_given_counts_at_what_it_delivered() -> None:
    assert overfed(Link()) == pytest.approx(2e6, rel=0.01)


def test_a_queue_without_loss_is_a_backlog_too() -> None:
    """TCP gives a link little more than it delivers: the round trip tells its queue."""
    link = Link()
    for _ in range(3):
        link.step(per_step(2e6), per_step(2e6))  # 2 ms round trip, kept up
    assert link.a.rate is None
    assert link.step(per_step(2e6), per_step(1.9e6), one_way=0.02) is None  # first queued
    assert link.step(per_step(2e6), per_step(1.9e6), one_way=0.02) == pytest.approx(1.9e6,
                                                                                    rel=0.01)


def test_a_queue_as_long_as_balance_counted_on_is_no_backlog() -> None:
    """Balance's model said the link's queue would take 40 ms when the probe left: a round
    trip 40 ms longer is the rate it counts, not a slower one."""
    meter, peer = LinkMeter(CEILING), LinkMeter(CEILING)
    for step, (queue, one_way) in enumerate([(0.0, 0.001), (0.0, 0.001), (0.04, 0.021),
                                             (0.04, 0.021), (0.0, 0.021), (0.0, 0.021)]):
        now = 10.0 + step * INTERVAL
        peer.take(meter.report(now, queue), now + one_way)
        meter.sent += per_step(2e6)
        peer.received += per_step(2e6)
        meter.take(peer.report(now + one_way), now + 2 * one_way)
        assert (meter.rate is None) == (step < 5), step  # the last two: queued past the model


def test_a_burst_into_an_idle_link_is_no_sample() -> None:
    """A link idle, then given a burst that queues (TCP's start): what it delivered over the
    report's interval counts its idle time too; only a backlog at two reports in a row does."""
    link = Link()
    link.step(0, 0)
    link.step(0, 0)
    assert link.step(per_step(8e6), per_step(1e6), one_way=0.05) is None
    assert link.a.rate is None


def test_a_starved_report_is_no_slowdown_but_a_lasting_one_is() -> None:
    link = Link()
    overfed(link)
    for _ in range(RATE_SAMPLES - 1):  # queued, but given little: its queue draining
        assert link.step(MIN_BYTES, MIN_BYTES, one_way=0.05) == pytest.approx(2e6, rel=0.01)
    assert link.step(MIN_BYTES, MIN_BYTES, one_way=0.05) == pytest.approx(
        MIN_BYTES * 8 / INTERVAL, rel=0.01)


def test_an_idle_link_keeps_its_rate_whatever_its_round_trip() -> None:
    link = Link()
    overfed(link)
    for _ in range(RATE_SAMPLES * 2):
        assert link.step(0, 0, one_way=0.05) == pytest.approx(2e6, rel=0.01)


def test_a_link_that_keeps_up_grows_until_it_counts_as_unmeasured() -> None:
    link = Link()
    rate = overfed(link)
    assert rate is not None
    for _ in range(RATE_SAMPLES - 1):  # the backlog's sample is still among the last ones
        assert link.step(per_step(rate / 2), per_step(rate / 2)) == rate
    grown = link.step(per_step(rate / 2), per_step(rate / 2))
    assert grown == pytest.approx(rate * GROWTH)
    steps = 0
    while link.a.rate is not None:
        steps += 1
        assert steps < 30
        link.step(per_step(link.a.rate), per_step(link.a.rate))
    assert link.a.rate is None  # near the link's own figure (here NOMINAL_RATE)


def test_balance_splits_by_the_measured_rates() -> None:
    spreader = Spreader([None, None])  # two links without figures: both nominal
    spreader.measured(0, 2e6, None)
    spreader.measured(1, 6e6, 0.004)
    picks = [spreader.pick((0, 1), 1200, 0.0) for _ in range(400)]
    assert picks.count(1) / len(picks) == pytest.approx(0.75, abs=0.02)
    assert spreader.delays == [0.0, 0.002]
    spreader.measured(1, None, None)  # unmeasured again: nominal, much the faster
    assert [spreader.pick((0, 1), 1200, 10.0) for _ in range(10)] == [1] * 10
