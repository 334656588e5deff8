"""The medium's topology (who hears whom) and addressed frames: the file's syntax and its
errors, the pairs it gives the channel, and the hidden-station figure of issue 28 on the pure
channel with a simulated clock. Pure logic."""

from __future__ import annotations

import math
import random

import pytest
from linkbridge_sim.channel import Channel, Radio
from linkbridge_sim.medium_protocol import EVERY_STATION, address, station_name, unaddress
from linkbridge_sim.reception import Pair
from linkbridge_sim.topology import parse_topology

Z99 = 2.576  # two-sided 99% of the normal approximation to the binomial


def test_a_line_gives_both_ways_and_a_greater_sign_one_way() -> None:
    topology = parse_topology("# a line\nA B  # both ways\nB C loss=10% level=-3\nC > D\n")
    assert topology.stations == {"A", "B", "C", "D"}
    assert topology.pairs[("A", "B")] == topology.pairs[("B", "A")] == Pair()
    assert topology.pairs[("C", "B")] == Pair(loss=0.1, level=-3.0)
    assert ("C", "D") in topology.pairs and ("D", "C") not in topology.pairs
    assert topology.neighbours("B") == ["A", "C"]


def test_the_reception_of_joined_stations_makes_every_unlinked_pair_deaf() -> None:
    reception = parse_topology("A B\nB C loss=5%\n").reception({"A": "k1", "B": "k2", "C": "k3"})
    assert reception.hears("k1", "k2") and reception.hears("k3", "k2")
    assert not reception.hears("k1", "k3") and not reception.hears("k3", "k1")
    assert reception.loss("k3", "k2", rxloss=0.5) == 0.05
    assert reception.loss("k1", "k2", rxloss=0.5) == 0.5  # the receiver's own rxloss


@pytest.mark.parametrize(("text", "error"), [
    ("", "no links"),
    ("A\n", "line 1: expected"),
    ("A B C\n", "line 1: expected"),
    ("A A\n", "line 1: expected"),
    ("A B\nB A\n", "line 2: B -> A is given twice"),
    ("A B gain=3\n", "unknown option 'gain'"),
    ("A B loss=120%\n", "<= 100%"),
    ("A > \n", "expected"),
])
def test_a_bad_topology_names_its_line(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_topology(text)


def test_addresses_round_trip_and_bad_ones_are_refused() -> None:
    assert unaddress(address("b", b"frame")) == ("b", b"frame")
    assert unaddress(address(EVERY_STATION, b"")) == (EVERY_STATION, b"")
    for body in (b"", b"\x05ab", b"\x01\xff"):
        with pytest.raises(ValueError):
            unaddress(body)
    for name in ("", "a b", "-a", "x" * 33, "a:1"):
        with pytest.raises(ValueError, match="bad station name"):
            station_name(name)


def poisson_times(rng: random.Random, rate: float, count: int) -> list[float]:
    times, now = [], 0.0
    for _ in range(count):
        now += rng.expovariate(rate)
        times.append(now)
    return times


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_two_hidden_senders_collide_at_the_middle_station_as_pure_aloha(seed: int) -> None:
    """Line A - B - C: A and C cannot hear each other, so neither defers to the other; each
    offers Poisson traffic to B (rate lambda, frame time T, lambda T = 0.05). The share of
    B's receptions lost to collisions lies within the 99% binomial interval of
    1 - e^(-2 lambda T) over 2000 frames; every other frame reaches B, none crosses A - C."""
    rate, size, load, frames = 9600.0, 120, 0.05, 1000
    frame_time = size * 8 / rate
    channel = Channel(random.Random(seed),
                      parse_topology("A B\nB C\n").reception({s: s for s in "ABC"}))
    for name in "ABC":
        channel.join(name, Radio(lambda n: n * 8 / rate, persist=255))
    rng = random.Random(seed + 100)
    offers = sorted((at, name) for name in "AC"
                    for at in poisson_times(rng, load / frame_time, frames))
    deliveries = []
    for at, name in offers:
        deliveries += channel.offer(name, bytes(size), at)
    while (due := channel.next_event()) is not None:
        deliveries += channel.advance(due)
    sent = channel.stats("A").sent + channel.stats("C").sent
    collided = channel.stats("A").collisions + channel.stats("C").collisions
    assert sent == 2 * frames
    assert {d.station for d in deliveries} == {"B"}
    assert len(deliveries) == sent - collided
    expected = 1 - math.exp(-2 * load)
    allowed = Z99 * math.sqrt(expected * (1 - expected) / sent)
    assert abs(collided / sent - expected) <= allowed, (collided / sent, expected, allowed)
