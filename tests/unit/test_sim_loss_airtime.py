"""Loss that costs airtime (`loss_airtime`): on a radio or a serial line a lost frame has used
the channel, so at 10% loss a saturating sender delivers 0.9x the lossless rate, not 1.0x as
netem's loss before the rate limiter gives. Pure models on a simulated clock."""

from __future__ import annotations

import random

import pytest
from linkbridge_sim.channel import Channel, Radio
from linkbridge_sim.config import SimConfig
from linkbridge_sim.decisions import RandomDecisions
from linkbridge_sim.impairment import Impairment

RATE, SIZE, SECONDS = 1e6, 1250, 30.0  # 1 Mbit/s, 1250-byte frames: 3,000 frames in 30 s
LINE = RATE / (SIZE * 8)  # frames per second the line carries


def delivered_rate(loss_airtime: bool, loss: float) -> tuple[float, int]:
    """A sender offering twice the line rate for SECONDS: frames per second that arrive, and
    how many lost frames came out as airtime only."""
    config = SimConfig(loss=loss, rate=RATE, limit=100, loss_airtime=loss_airtime)
    model = Impairment(config, RandomDecisions(config, random.Random(7)))
    arrived = airtime_only = 0
    for index in range(int(2 * LINE * SECONDS)):
        for release in model.offer(bytes(SIZE), index / (2 * LINE)).releases:
            if release.at <= SECONDS:
                airtime_only += release.lost
                arrived += not release.lost
    return arrived / SECONDS, airtime_only


def test_at_10_percent_loss_a_saturating_sender_gets_09x_the_lossless_rate() -> None:
    lossless, _ = delivered_rate(True, 0.0)
    assert lossless * SECONDS >= 2_500
    assert lossless == pytest.approx(LINE, rel=1e-3)
    costly, airtime_only = delivered_rate(True, 0.10)
    assert costly == pytest.approx(0.9 * lossless, rel=0.02)
    assert airtime_only == pytest.approx(0.1 * lossless * SECONDS, rel=0.1)
    free, none = delivered_rate(False, 0.10)  # netem's way: the loss costs nothing
    assert free == pytest.approx(lossless, rel=1e-3) and none == 0


def test_on_the_radio_a_lost_frame_takes_its_airtime_and_reaches_nobody() -> None:
    """A saturating persist=255 sender whose frames are lost one in ten: 0.9x the frames of a
    lossless one arrive; each lost frame was sent (airtime counted) and counted as lost."""
    def run(loss: float) -> tuple[int, Channel]:
        radio = Radio(lambda size: size * 8 / 9600, persist=255, limit=10)
        channel = Channel(random.Random(1))
        for name in ("a", "b"):
            channel.join(name, radio)
        rng, arrived, now = random.Random(3), 0, 0.0
        while now < 300.0:
            channel.offer("a", bytes(100), now, lost=rng.random() < loss)
            now = channel.next_event() or now
            arrived += len(channel.advance(now))
        return arrived, channel

    lossless, _ = run(0.0)
    arrived, channel = run(0.10)
    assert lossless >= 2_500
    assert arrived == pytest.approx(0.9 * lossless, rel=0.02)
    stats = channel.stats("a")
    decided = stats.delivered + stats.lost + stats.collisions
    assert stats.sent - 1 <= decided <= stats.sent  # the frame on the air at the end is not
    assert stats.collisions == 0
    assert stats.airtime == pytest.approx(stats.sent * 100 * 8 / 9600)
    assert stats.lost == pytest.approx(0.1 * stats.sent, rel=0.1)
