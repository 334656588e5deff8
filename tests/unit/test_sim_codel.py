"""CoDel (RFC 8289) as the simulator's queue management, and byte-limited queues: the control
law on a standing queue worked by hand, the way out and back into the dropping state, and the
radio's and the rate limiter's queues using them. Pure logic on a simulated clock."""

from __future__ import annotations

import math
import random

import pytest
from linkbridge_sim.channel import Channel, Delivery, Radio, StationStats
from linkbridge_sim.codel import CoDel
from linkbridge_sim.config import SimConfig
from linkbridge_sim.decisions import RandomDecisions
from linkbridge_sim.impairment import Impairment
from linkbridge_sim.rate import RateQueue


def standing_queue(codel: CoDel, start: float, end: float, sojourn: float,
                   step: float = 0.001) -> list[float]:
    """Dequeue a packet every `step` seconds from `start` to `end`, each queued `sojourn`
    seconds with plenty behind it; after a drop the next packet leaves at the same time.
    The times of the drops."""
    drops = []
    for tick in range(round((end - start) / step)):
        now = start + tick * step
        while codel.drop(now, sojourn, backlog=100_000):
            drops.append(now)
    return drops


def test_a_standing_queue_is_dropped_from_at_the_control_laws_times() -> None:
    """Sojourn 50 ms > target 5 ms: no drop for one interval (100 ms), then drops at
    100 ms, then interval / sqrt(count) apart: +100, +70.7, +57.7, +50, +44.7 ms..."""
    codel = CoDel(target=0.005, interval=0.100)
    drops = standing_queue(codel, 0.0, 1.0, 0.050)
    law = [0.1]
    for count in range(1, len(drops)):
        law.append(law[-1] + 0.1 / math.sqrt(count))
    assert law[:6] == pytest.approx([0.1, 0.2, 0.27071, 0.32845, 0.37845, 0.42317], abs=1e-5)
    # sum of 0.1 / sqrt(k) for k = 1..26 is about 2 sqrt(26) - 1.46 = 8.74 (x 0.1 s): 27 drops
    assert len(drops) == sum(1 for t in law if t < 1.0) == 27
    for got, scheduled in zip(drops, law, strict=False):
        assert scheduled <= got + 1e-9 < scheduled + 0.001  # on the first dequeue after it
    assert codel.drops == len(drops) and codel.count == len(drops)


def test_codel_leaves_the_dropping_state_below_target_and_comes_back_at_its_rate() -> None:
    codel = CoDel(target=0.005, interval=0.100)
    first = standing_queue(codel, 0.0, 0.5, 0.050)  # 0.1 0.2 0.271 0.328 0.378 0.423 0.464
    assert len(first) == 7 and codel.count == 7 and codel.dropping
    assert standing_queue(codel, 0.5, 0.6, 0.002) == []  # below target: out of dropping
    assert not codel.dropping
    again = standing_queue(codel, 0.6, 0.8, 0.050)
    # above target again from 0.6: dropping from 0.7 with count = 7 - 1 (RFC 8289 5.5: the
    # last count less the one it entered with, since it left less than 16 intervals ago)
    assert again[0] == pytest.approx(0.7)
    assert codel.count >= 6
    assert again[1] == pytest.approx(0.7 + 0.1 / math.sqrt(6), abs=0.001)
    codel.idle()
    assert not codel.dropping and codel.first_above_time is None


def test_codel_never_drops_from_a_queue_below_target_or_one_mtu() -> None:
    codel = CoDel(target=0.005, interval=0.100)
    assert standing_queue(codel, 0.0, 2.0, 0.004) == []
    assert not any(codel.drop(t / 100, 0.5, backlog=1500) for t in range(300))
    with pytest.raises(ValueError):
        CoDel(target=0.0)


def test_a_byte_limit_tail_drops_on_the_rate_queue_and_the_radio() -> None:
    queue = RateQueue(rate=8000.0, overhead=0, limit=100, limit_bytes=250)
    sizes = [100, 100, 60, 40]  # 200 held, 60 would make 260: dropped; 40 fits
    assert [queue.schedule(size, 0.0, 0.0) for size in sizes] == [
        pytest.approx(0.1), pytest.approx(0.2), "queue_full", pytest.approx(0.24)]
    assert queue.schedule(60, 0.0, 0.1) == pytest.approx(0.3)  # the first left: room again
    channel = Channel(random.Random(1))
    for name in "ab":
        channel.join(name, Radio(lambda size: size * 8 / 9600, persist=255, limit_bytes=250))
    for size in (100, 100, 100, 60, 50):  # the first goes on the air, 250 bytes wait
        channel.offer("a", bytes(size), 0.0)
    assert channel.stats("a").queue_full == 1
    assert sorted(len(d.frame) for d in drain(channel)) == [50, 100, 100, 100]


def drain(channel: Channel, end: float = 1e4) -> list[Delivery]:
    delivered = []
    while (due := channel.next_event()) is not None and due <= end:
        delivered += channel.advance(due)
    return delivered


def sojourns_of_a_saturating_sender(codel: tuple[float, float] | None) -> tuple[float, int]:
    """A sender at 1.11x the rate of a 1 Mbit/s queue (1000-byte packets every 7.2 ms, 8 ms
    each) for 20 s: the mean time the packets sent in the last 10 s waited, and how many CoDel
    dropped."""
    config = SimConfig(rate=1e6, codel=codel)
    model = Impairment(config, RandomDecisions(config, random.Random(1)))
    waits, dropped = [], 0
    for index in range(2778):
        now = index * 0.0072
        outcome = model.offer(bytes(1000), now)
        dropped += outcome.drops.count("codel")
        if now >= 10.0 and outcome.releases:
            waits.append(outcome.releases[0].at - 0.008 - now)
    return sum(waits) / len(waits), dropped


def test_codel_keeps_the_rate_queues_standing_delay_near_its_target() -> None:
    """Without CoDel the queue grows by 0.8 ms a packet (1.67 s on average in the last 10 s);
    with CoDel (target 50 ms, interval 500 ms) it stays near the target (0.16 s measured:
    CoDel converges on an unresponsive sender's excess only as sqrt(count) grows)."""
    plain, none = sojourns_of_a_saturating_sender(None)
    assert plain > 1.5 and none == 0
    managed, dropped = sojourns_of_a_saturating_sender((0.050, 0.500))
    assert managed < 0.25 and dropped > 100


def run_radio(codel: tuple[float, float] | None) -> StationStats:
    """100-byte frames (83 ms at 9600 bit/s) offered every 75 ms: 1.11x the line rate."""
    radio = Radio(lambda size: size * 8 / 9600, persist=255, codel=codel, burst=4)
    channel = Channel(random.Random(1))
    for name in "ab":
        channel.join(name, radio)
    for index in range(4000):
        channel.offer("a", bytes(100), index * 0.075)
        drain(channel, index * 0.075)
    drain(channel)
    return channel.stats("a")


def test_codel_drops_from_the_radios_queue_as_frames_leave_it() -> None:
    plain = run_radio(None)
    assert plain.codel_drops == 0 and plain.queueing / plain.sent > 10.0  # 16.7 s measured
    managed = run_radio((0.5, 5.0))
    assert managed.codel_drops > 100
    assert managed.queueing / managed.sent < 4.0  # 2.7 s measured, convergence included
    assert managed.sent + managed.codel_drops + managed.queue_full == managed.offered
