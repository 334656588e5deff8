"""The sim: radio models, exactly, on a simulated clock: LoRa airtime against Semtech's formula
worked by hand, the duty cycle over every window, the shared half-duplex channel (p-persistent
CSMA, turnaround, collisions) and its settings. Pure logic: time and generator passed in."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from linkbridge_sim.channel import Channel, Delivery, Radio, Readiness
from linkbridge_sim.duty import DutyCycle
from linkbridge_sim.lora import LoraModulation
from linkbridge_sim.radio import RadioSettings
from linkbridge_sim.reception import Pair, Reception

# Time on air worked by hand from Semtech's formula (SX1276 datasheet 4.1.1.7, AN1200.13):
#   Tsym = 2^SF / BW;  Tpreamble = (Npreamble + 4.25) Tsym
#   Npayload = 8 + max(ceil((8 PL - 4 SF + 28 + 16 CRC - 20 IH) / (4 (SF - 2 DE))) (CR + 4), 0)
LORA_CASES = [
    # 50 B, SF9, 125 kHz, 4/5, preamble 8, explicit, CRC, no LDRO: Tsym 4.096 ms,
    # preamble 12.25 * 4.096 = 50.176 ms; ceil((400 - 36 + 28 + 16) / 36) = 12, * 5 + 8 = 68
    # symbols = 278.528 ms; total 328.704 ms (the issue's figure).
    (50, LoraModulation(sf=9, bandwidth=125e3, cr=1), 0.328704),
    # 20 B, SF12, 125 kHz, 4/5, LDRO (auto: 32.768 ms symbols): preamble 12.25 * 32.768 =
    # 401.408 ms; ceil((160 - 48 + 28 + 16) / 40) = 4, * 5 + 8 = 28 symbols = 917.504 ms;
    # total 1318.912 ms.
    (20, LoraModulation(sf=12, bandwidth=125e3, cr=1), 1.318912),
    # 10 B, SF7, 250 kHz, 4/8, preamble 6, implicit header, no CRC: Tsym 0.512 ms, preamble
    # 10.25 * 0.512 = 5.248 ms; ceil((80 - 28 + 28 - 20) / 28) = 3, * 8 + 8 = 32 symbols =
    # 16.384 ms; total 21.632 ms.
    (10, LoraModulation(sf=7, bandwidth=250e3, cr=4, preamble=6, explicit_header=False,
                        crc=False), 0.021632),
    # 255 B, SF10, 500 kHz, 4/6, LDRO forced on: Tsym 2.048 ms, preamble 12.25 * 2.048 =
    # 25.088 ms; ceil((2040 - 40 + 28 + 16) / (4 * (10 - 2))) = 64, * 6 + 8 = 392 symbols =
    # 802.816 ms; total 827.904 ms.
    (255, LoraModulation(sf=10, bandwidth=500e3, cr=2, ldro=True), 0.827904),
]


@pytest.mark.parametrize(("size", "modulation", "expected"), LORA_CASES)
def test_lora_airtime_matches_semtechs_formula(size: int, modulation: LoraModulation,
                                               expected: float) -> None:
    assert modulation.airtime(size) == pytest.approx(expected, abs=1e-4)
    assert modulation.airtime(size) == pytest.approx(expected, rel=1e-9)


def test_lora_low_data_rate_optimisation_is_automatic_above_16_ms_symbols() -> None:
    assert not LoraModulation(sf=10, bandwidth=125e3).low_data_rate  # 8.192 ms
    assert LoraModulation(sf=11, bandwidth=125e3).low_data_rate  # 16.384 ms
    assert not LoraModulation(sf=11, bandwidth=250e3).low_data_rate
    assert not LoraModulation(sf=12, ldro=False).low_data_rate


def test_lora_airtime_grows_with_the_payload_and_caps_it_at_255() -> None:
    lora = LoraModulation(sf=8)
    times = [lora.airtime(size) for size in range(256)]
    assert times == sorted(times)
    with pytest.raises(ValueError, match=r"0\.\.255"):
        lora.airtime(256)
    for bad in ({"sf": 13}, {"sf": 5}, {"cr": 0}, {"cr": 5}, {"sf": 6}):
        with pytest.raises(ValueError):
            LoraModulation(**bad)


# The duty cycle -------------------------------------------------------------------------------


def airtime_in(intervals: list[tuple[float, float]], start: float, end: float) -> float:
    return sum(max(0.0, min(e, end) - max(s, start)) for s, e in intervals)


def worst_window(intervals: list[tuple[float, float]], window: float) -> float:
    """The most airtime in any window: one that starts at a transmission's start or ends at one's
    end attains it (the airtime in a sliding window is piecewise linear between those)."""
    edges = [(s, s + window) for s, _ in intervals] + [(e - window, e) for _, e in intervals]
    return max((airtime_in(intervals, a, b) for a, b in edges), default=0.0)


def test_duty_cycle_waits_exactly_until_old_airtime_leaves_the_window() -> None:
    duty = DutyCycle(0.10, 10.0)  # 1 s per 10 s
    assert duty.earliest(0.6, 0.0) == 0.0
    duty.record(0.0, 0.6)
    assert duty.earliest(0.4, 0.6) == 0.6
    duty.record(0.6, 1.0)
    # the window ending at the new end must hold at most 1 s: 0.5 s of old airtime leaves by
    # start + 0.5 - 10 = 0.5, so start = 10.0
    assert duty.earliest(0.5, 1.0) == pytest.approx(10.0)
    assert duty.earliest(0.5, 12.0) == 12.0
    assert not duty.fits(1.5)
    with pytest.raises(ValueError):
        DutyCycle(0.0, 10.0)


@settings(max_examples=60, deadline=None)
@given(share=st.floats(0.01, 0.5), window=st.floats(1.0, 100.0),
       frames=st.lists(st.tuples(st.floats(0.0, 5.0), st.floats(0.001, 1.0)),
                       min_size=1, max_size=80))
def test_no_window_ever_exceeds_the_duty_cycle(share: float, window: float,
                                               frames: list[tuple[float, float]]) -> None:
    duty = DutyCycle(share, window)
    now, sent = 0.0, list[tuple[float, float]]()
    for gap, airtime in frames:
        now += gap
        if not duty.fits(airtime):
            continue
        start = duty.earliest(airtime, now)
        assert start >= now
        if start > now:  # not a moment earlier would have done
            assert airtime_in(sent, start - 1e-6 + airtime - window, start) + airtime > \
                duty.budget - 1e-9
        duty.record(start, start + airtime)
        sent.append((start, start + airtime))
        now = start + airtime
    assert worst_window(sent, window) <= share * window * (1 + 1e-9) + 1e-9
    assert duty.peak == pytest.approx(max((airtime_in(sent, e - window, e) for _, e in sent),
                                          default=0.0))


# The channel ----------------------------------------------------------------------------------


def rate_radio(rate: float = 9600.0, **settings: Any) -> Radio:
    return Radio(lambda size: size * 8 / rate, **settings)


def channel_with(radios: dict[str, Radio], seed: int = 1) -> Channel:
    channel = Channel(random.Random(seed))
    for name, radio in radios.items():
        channel.join(name, radio)
    return channel


def run_until(channel: Channel, end: float,
              on_delivery: Callable[[Delivery], None] = lambda d: None) -> list[Delivery]:
    """Process every event up to `end` in time order, calling `on_delivery` as frames arrive
    (it may offer more frames, at the delivery's time)."""
    delivered = []
    while (due := channel.next_event()) is not None and due <= end:
        for delivery in channel.advance(due):
            delivered.append(delivery)
            on_delivery(delivery)
    channel.advance(end)
    return delivered


def test_a_lone_persist_255_frame_goes_out_at_once_and_arrives_after_keyup_and_data() -> None:
    radio = rate_radio(9600.0, persist=255, txdelay=0.030, txtail=0.010)
    channel = channel_with({"a": radio, "b": radio, "c": radio})
    assert channel.offer("a", bytes(120), 5.0) == []
    delivered = run_until(channel, 10.0)
    arrival = 5.0 + 0.030 + 120 * 8 / 9600
    assert sorted((d.station, d.at) for d in delivered) == [("b", pytest.approx(arrival)),
                                                            ("c", pytest.approx(arrival))]
    stats = channel.stats("a")
    assert (stats.sent, stats.delivered, stats.collisions) == (1, 1, 0)
    assert stats.airtime == pytest.approx(0.040 + 0.1)
    assert stats.queueing == 0.0


def test_ping_pong_rtt_is_serialisation_both_ways_plus_keyup_twice_and_one_tail() -> None:
    """B answers each frame as it arrives: it must wait for A's tail before keying up."""
    radio = rate_radio(9600.0, persist=255, txdelay=0.030, txtail=0.010)
    channel = channel_with({"a": radio, "b": radio})
    replies: list[float] = []

    def answer(delivery: Delivery) -> None:
        if delivery.station == "b":
            channel.offer("b", bytes(84), delivery.at)
        else:
            replies.append(delivery.at)

    starts = [1.0 * i for i in range(1, 101)]
    for start in starts:
        run_until(channel, start, answer)
        channel.offer("a", bytes(84), start)
    run_until(channel, 200.0, answer)
    analytic = 2 * (0.030 + 84 * 8 / 9600) + 0.010
    assert len(replies) == 100
    for start, reply in zip(starts, replies, strict=True):
        assert reply - start == pytest.approx(analytic)


def test_frames_starting_within_one_slot_collide_and_both_are_lost() -> None:
    radio = rate_radio(9600.0, persist=255, slottime=0.010)
    channel = channel_with({"a": radio, "b": radio, "c": radio})
    channel.offer("a", bytes(100), 1.0)
    channel.advance(1.0)
    channel.offer("b", bytes(100), 1.009)  # a's carrier is not heard yet
    assert run_until(channel, 5.0) == []
    assert channel.stats("a").collisions == channel.stats("b").collisions == 1
    assert channel.stats("a").delivered == channel.stats("b").delivered == 0


def test_a_frame_offered_after_one_slot_defers_until_the_channel_is_free() -> None:
    radio = rate_radio(9600.0, persist=255, slottime=0.010, txtail=0.005)
    channel = channel_with({"a": radio, "b": radio})
    channel.offer("a", bytes(100), 1.0)
    channel.advance(1.011)
    channel.offer("b", bytes(100), 1.011)
    delivered = run_until(channel, 5.0)
    air = 100 * 8 / 9600
    assert [(d.station, d.at) for d in delivered] == [
        ("b", pytest.approx(1.0 + air)), ("a", pytest.approx(1.0 + air + 0.005 + air))]
    assert channel.stats("b").queueing == pytest.approx(1.0 + air + 0.005 - 1.011)


def test_persistence_defers_a_geometric_number_of_slots() -> None:
    """On a free channel a frame waits k slots with probability (1 - p)^k p, p = 64/256."""
    radio = rate_radio(1e6, persist=63, slottime=0.010)
    channel = channel_with({"a": radio, "b": radio}, seed=5)
    frames = 4000
    for index in range(frames):
        channel.offer("a", bytes(10), 10.0 * index)
        run_until(channel, 10.0 * index + 9.0)
    stats = channel.stats("a")
    p = 64 / 256
    mean_slots = stats.queueing / frames / 0.010
    assert mean_slots == pytest.approx((1 - p) / p, rel=0.05)


def test_two_saturating_senders_collide_and_share_less_than_the_line_rate() -> None:
    rate, size = 9600.0, 200
    radio = rate_radio(rate, persist=63, slottime=0.010, txdelay=0.010, txtail=0.005)
    channel = channel_with({"a": radio, "b": radio}, seed=3)
    for name in ("a", "b"):
        for _ in range(radio.limit):
            channel.offer(name, bytes(size), 0.0)
    delivered = run_until(channel, 300.0)
    goodput = len(delivered) * size * 8 / 300.0
    a, b = channel.stats("a"), channel.stats("b")
    assert a.collisions > 0 and b.collisions > 0
    assert a.delivered + b.delivered == len(delivered)
    assert goodput < rate
    for stats in (a, b):  # at most the frame on the air at the end is still undecided
        assert stats.sent - 1 <= stats.collisions + stats.delivered <= stats.sent


def test_a_saturating_sender_keeps_every_duty_window_between_095_and_100_percent() -> None:
    """duty=1% over 1 h windows, LoRa SF9 50-byte frames, 12 simulated hours."""
    lora = LoraModulation(sf=9)
    radio = Radio(lora.airtime, persist=255, duty=0.01, duty_window=3600.0, limit=10)
    channel = channel_with({"a": radio, "b": radio})
    air = lora.airtime(50)
    sent: list[tuple[float, float]] = []

    def refill(delivery: Delivery) -> None:
        sent.append((delivery.at - air, delivery.at))
        channel.offer("a", bytes(50), delivery.at)

    for _ in range(10):
        channel.offer("a", bytes(50), 0.0)
    hours = 12
    run_until(channel, hours * 3600.0, refill)
    shares = [airtime_in(sent, h * 3600.0, (h + 1) * 3600.0) / 3600.0 for h in range(hours)]
    assert all(0.0095 <= share <= 0.0100 + 1e-12 for share in shares), shares
    assert worst_window(sent, 3600.0) <= 36.0 + 1e-9
    stats = channel.stats("a")
    assert stats.duty_waits >= hours - 1
    assert stats.duty_peak <= 36.0 + 1e-9


def test_frames_too_long_for_the_duty_cycle_and_past_the_queue_are_dropped_and_counted() -> None:
    radio = rate_radio(9600.0, duty=0.01, duty_window=10.0, limit=2)  # 0.1 s = 120 bytes
    channel = channel_with({"a": radio, "b": radio})
    channel.offer("a", bytes(200), 0.0)
    for _ in range(4):
        channel.offer("a", bytes(50), 0.0)
    stats = channel.stats("a")
    assert (stats.offered, stats.too_long, stats.queue_full) == (5, 1, 2)


def test_the_same_seed_gives_the_same_run() -> None:
    def one_run(seed: int) -> list[tuple[float, str, int]]:
        radio = rate_radio(9600.0, persist=31, slottime=0.010)
        channel = channel_with({"a": radio, "b": radio, "c": radio}, seed=seed)
        rng = random.Random(9)
        for index in range(300):
            channel.offer(rng.choice("abc"), bytes(rng.randrange(20, 300)), index * 0.05)
        return [(d.at, d.station, len(d.frame)) for d in run_until(channel, 100.0)]

    assert one_run(1) == one_run(1)
    assert one_run(1) != one_run(2)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 1 << 32), persist=st.integers(0, 255),
       offers=st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 300),
                                 st.floats(0.0, 0.2)), min_size=1, max_size=60))
def test_any_run_conserves_frames_and_never_delivers_overlapping_ones(
        seed: int, persist: int, offers: list[tuple[str, int, float]]) -> None:
    radio = rate_radio(9600.0, persist=persist, slottime=0.005, txdelay=0.002, txtail=0.001)
    channel = channel_with({"a": radio, "b": radio, "c": radio}, seed=seed)
    now, delivered = 0.0, []
    for name, size, gap in offers:
        now += gap
        delivered += run_until(channel, now)
        delivered += channel.offer(name, bytes(size), now)
    delivered += run_until(channel, now + 1000.0)
    total = {name: channel.stats(name) for name in "abc"}
    for stats in total.values():
        assert stats.sent + stats.queue_full + stats.too_long == stats.offered
        assert stats.delivered + stats.collisions == stats.sent
    assert len(delivered) == 2 * sum(s.delivered for s in total.values())
    # frames that arrive were alone on the air: each starts after the previous one's tail
    intervals = sorted({(d.at - 0.002 - len(d.frame) * 8 / 9600, d.at) for d in delivered})
    for (_, end), (start, _) in itertools.pairwise(intervals):
        assert start >= end + 0.001 - 1e-9


def test_radio_settings_travel_as_a_json_record() -> None:
    lora = RadioSettings(lora=LoraModulation(sf=7, bandwidth=500e3), persist=255, duty=0.01)
    plain = RadioSettings(rate=1200.0, txdelay=0.3, txtail=0.05, burst=8, slotwait=True,
                          dcd=0.02)
    for settings_ in (lora, plain):
        assert RadioSettings.from_record(settings_.to_record()) == settings_
    for bad in ("x", {"rate": 1200, "colour": 1}, {"rate": -1}, {}, {"rate": 1, "persist": 300},
                {"lora": {"sf": 99}}, {"lora": {"spreading": 9}}, {"rate": float("nan")},
                {"rate": 9600, "txdelay": float("inf")}, {"rate": "fast"}, {"lora": "x"},
                {"lora": {"sf": 9, "bandwidth": float("nan")}}, {"rate": 1, "burst": 0},
                {"rate": 1, "dcd": -1}, {"rate": 1, "level": "loud"}, {"rate": 1, "overhead": "x"},
                {"rate": 1, "codel": ["a", 1]}, {"rate": 1, "framing": []},
                {"rate": 1, "limit_bytes": "x"}):
        with pytest.raises(ValueError):
            RadioSettings.from_record(bad)


def test_an_integer_too_large_for_a_float_is_refused() -> None:
    """Found by `python -m benchmarks fuzz sim-medium`: a join whose `txtail` was 10**400 (JSON
    integers have no limit) was taken, and the medium died of OverflowError describing it."""
    for field in ("txtail", "rate", "slottime"):
        with pytest.raises(ValueError, match="finite numbers"):
            RadioSettings.from_record({"rate": 9600, field: 10**400})
    with pytest.raises(ValueError, match="finite numbers"):
        RadioSettings.from_record({"lora": {"sf": 9, "bandwidth": 10**400}})


# TNC behaviour: bursts, the slot before the first draw, the carrier-detect delay --------------


def test_one_key_up_carries_every_queued_frame_up_to_the_burst() -> None:
    """Three frames queued at once: burst=8 sends them after one txdelay, back to back, with
    one tail; burst=1 keys up three times (and each waits for the others' tails)."""
    air = 100 * 8 / 9600
    for burst, arrivals, airtime in (
            (8, [0.3 + air, 0.3 + 2 * air, 0.3 + 3 * air], 0.3 + 3 * air + 0.1),
            (1, [0.3 + air, 2 * (0.3 + air) + 0.1, 3 * (0.3 + air) + 0.2], 3 * (0.4 + air))):
        radio = rate_radio(9600.0, persist=255, txdelay=0.3, txtail=0.1, burst=burst)
        channel = channel_with({"a": radio, "b": radio})
        for _ in range(3):
            channel.offer("a", bytes(100), 0.0)
        delivered = run_until(channel, 10.0)
        assert [d.at for d in delivered] == pytest.approx(arrivals)
        stats = channel.stats("a")
        assert (stats.sent, stats.delivered, stats.transmissions) == (3, 3, 3 if burst == 1 else 1)
        assert stats.airtime == pytest.approx(airtime)


def test_a_frame_offered_during_the_key_up_joins_the_burst_and_one_past_it_waits() -> None:
    air = 100 * 8 / 9600
    radio = rate_radio(9600.0, persist=255, txdelay=0.3, txtail=0.1, burst=2)
    channel = channel_with({"a": radio, "b": radio})
    channel.offer("a", bytes(100), 0.0)
    channel.offer("a", bytes(100), 0.2)  # during the key-up: joins
    channel.offer("a", bytes(100), 0.25)  # the burst is full: next key-up
    delivered = run_until(channel, 10.0)
    second = 0.3 + 2 * air + 0.1
    assert [d.at for d in delivered] == pytest.approx(
        [0.3 + air, 0.3 + 2 * air, second + 0.3 + air])
    assert channel.stats("a").queueing == pytest.approx(0.0 + (0.3 + air - 0.2) + second - 0.25)


def test_slotwait_waits_one_slot_before_the_first_draw() -> None:
    """Dire Wolf waits a slot, then draws: a lone persist=255 frame leaves one slot late, and
    with p = 64/256 the wait is 1/p slots on average instead of (1 - p)/p."""
    radio = rate_radio(1e6, persist=255, slottime=0.1, slotwait=True)
    channel = channel_with({"a": radio, "b": radio})
    channel.offer("a", bytes(10), 1.0)
    assert [d.at for d in run_until(channel, 5.0)] == pytest.approx([1.1 + 80e-6])
    radio = rate_radio(1e6, persist=63, slottime=0.010, slotwait=True)
    channel = channel_with({"a": radio, "b": radio}, seed=5)
    frames = 4000
    for index in range(frames):
        channel.offer("a", bytes(10), 10.0 * index)
        run_until(channel, 10.0 * index + 9.0)
    assert channel.stats("a").queueing / frames / 0.010 == pytest.approx(256 / 64, rel=0.05)


def test_the_carrier_detect_delay_is_its_own_setting() -> None:
    """With dcd=2ms (slottime still 10ms) a frame offered 3 ms after another began hears it and
    defers; with the default (dcd = slottime) the two collide."""
    for dcd, collisions in ((0.002, 0), (None, 1)):
        radio = rate_radio(9600.0, persist=255, slottime=0.010, dcd=dcd)
        channel = channel_with({"a": radio, "b": radio, "c": radio})
        channel.offer("a", bytes(100), 1.0)
        channel.advance(1.003)
        channel.offer("b", bytes(100), 1.003)
        delivered = run_until(channel, 5.0)
        assert channel.stats("b").collisions == collisions
        assert len(delivered) == 2 * (2 - 2 * collisions)


# Reception per receiver: per-pair loss, capture, who hears whom --------------------------------


def test_per_pair_loss_loses_frames_at_one_receiver_only() -> None:
    """a -> c loses half of a's frames (a Pair), d loses a fifth of all it hears (its rxloss),
    b hears everything: the frame counts as delivered when anyone got it."""
    radio = rate_radio(1e5, persist=255)
    channel = Channel(random.Random(2), Reception({("a", "c"): Pair(loss=0.5)}))
    for name in "abc":
        channel.join(name, radio)
    channel.join("d", rate_radio(1e5, persist=255, rxloss=0.2))
    frames = 2000
    got: dict[str, int] = {name: 0 for name in "bcd"}
    for index in range(frames):
        channel.offer("a", bytes(50), index * 0.1)
        for delivery in run_until(channel, index * 0.1 + 0.09):
            got[delivery.station] += 1
    assert got["b"] == channel.stats("a").delivered == frames
    assert got["c"] == pytest.approx(0.5 * frames, rel=0.06)
    assert got["d"] == pytest.approx(0.8 * frames, rel=0.03)
    assert channel.stats("c").rx_lost == frames - got["c"]
    assert channel.stats("d").rx_lost == frames - got["d"]


def test_a_frame_enough_stronger_survives_an_overlap_with_capture() -> None:
    """a (10 dB) and b (0 dB) start together: c, with a 6 dB capture margin, decodes a's frame
    and loses b's; without a margin (or with 12 dB) both are lost as before."""
    for margin, delivered in ((6.0, 1), (12.0, 0), (None, 0)):
        channel = channel_with({"a": rate_radio(9600.0, persist=255, level=10.0),
                                "b": rate_radio(9600.0, persist=255),
                                "c": rate_radio(9600.0, persist=255, capture=margin)})
        channel.offer("a", bytes(100), 1.0)
        channel.offer("b", bytes(100), 1.0)
        arrived = run_until(channel, 5.0)
        assert [(d.station, d.frame) for d in arrived] == [("c", bytes(100))] * delivered
        a, b = channel.stats("a"), channel.stats("b")
        assert (a.delivered, a.collisions) == (delivered, 1 - delivered)
        assert (b.delivered, b.collisions) == (0, 1)
        assert channel.stats("c").captured == delivered


def test_hidden_stations_neither_defer_to_nor_destroy_frames_they_cannot_hear() -> None:
    """a and b cannot hear each other (a topology's hidden stations), both reach c: b sends
    during a's frame and both are lost at c; a station that hears no one gets nothing."""
    deaf = {("a", "b"): Pair(heard=False), ("b", "a"): Pair(heard=False)}
    channel = Channel(random.Random(1), Reception(deaf))
    for name in "abc":
        channel.join(name, rate_radio(9600.0, persist=255))
    channel.offer("a", bytes(100), 1.0)
    channel.advance(1.05)
    channel.offer("b", bytes(100), 1.05)  # would defer if it heard a
    assert run_until(channel, 5.0) == []
    assert channel.stats("a").collisions == channel.stats("b").collisions == 1
    alone = Channel(random.Random(1), Reception({("a", "b"): Pair(heard=False)}))
    for name in "ab":
        alone.join(name, rate_radio(9600.0, persist=255))
    alone.offer("a", bytes(10), 0.0)
    assert run_until(alone, 1.0) == []
    assert alone.stats("a").missed == 1


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 1 << 32), burst=st.integers(1, 4), slotwait=st.booleans(),
       capture=st.sampled_from([None, 3.0]), codel=st.sampled_from([None, (0.05, 0.5)]),
       offers=st.lists(st.tuples(st.sampled_from("abc"), st.integers(1, 300),
                                 st.floats(0.0, 0.2), st.booleans()), min_size=1, max_size=60))
def test_any_run_with_bursts_loss_capture_and_codel_accounts_for_every_frame(
        seed: int, burst: int, slotwait: bool, capture: float | None,
        codel: tuple[float, float] | None, offers: list[tuple[str, int, float, bool]]) -> None:
    """Every offered frame is queued out, dropped by CoDel or sent; every sent one is
    delivered, collided, lost or missed; a delivered one reaches at most every other station,
    and nobody gets a frame its sender's loss model lost."""
    channel = Channel(random.Random(seed), Reception({("c", "a"): Pair(loss=0.3, level=5.0)}))
    for name in "abc":
        channel.join(name, rate_radio(9600.0, persist=127, slottime=0.005, txdelay=0.002,
                                      txtail=0.001, burst=burst, slotwait=slotwait,
                                      capture=capture, codel=codel, limit=5))
    now, delivered = 0.0, []
    for name, size, gap, lost in offers:
        now += gap
        delivered += run_until(channel, now)
        delivered += channel.offer(name, bytes([lost]) * size, now, lost=lost)
    delivered += run_until(channel, now + 1000.0)
    total = {name: channel.stats(name) for name in "abc"}
    for stats in total.values():
        assert stats.sent + stats.queue_full + stats.codel_drops == stats.offered
        assert stats.delivered + stats.collisions + stats.lost + stats.missed == stats.sent
    assert all(d.frame[0] == 0 for d in delivered)  # lost frames (bytes of 1) reach nobody
    assert sum(s.delivered for s in total.values()) <= len(delivered)
    assert len(delivered) <= 2 * sum(s.delivered for s in total.values())


# Readiness: what a station's link tells the queue above (channel.Readiness) -------------------


def test_readiness_holds_two_frames_and_is_busy_while_another_station_sends() -> None:
    """A keys up with two frames: it holds both until the first's data ends, then one; B,
    hearing A's carrier from its key-up to its tail, is busy (not ready) all that time."""
    air = 100 * 8 / 9600
    radio = rate_radio(9600.0, persist=255, txdelay=0.3, txtail=0.1, burst=8)
    channel = channel_with({"a": radio, "b": radio})
    assert channel.readiness("b") == Readiness(0, 0, False)
    channel.offer("a", bytes(100), 0.0)
    channel.offer("a", bytes(100), 0.0)
    channel.advance(0.1)
    assert channel.readiness("a") == Readiness(2, 2, False)
    assert not channel.readiness("a").ready(2)
    assert channel.readiness("b") == Readiness(0, 0, True)
    channel.advance(0.3 + air)  # the first frame's data ends
    assert channel.readiness("a") == Readiness(2, 1, False)
    assert channel.readiness("a").ready(2)
    assert not channel.readiness("a").ready(3)  # one more sent, not yet offered
    channel.advance(0.3 + 2 * air + 0.05)  # the tail
    assert channel.readiness("a") == Readiness(2, 0, False)
    assert not channel.readiness("b").ready(0)
    channel.advance(0.3 + 2 * air + 0.1)
    assert channel.readiness("b").ready(0)


def test_a_station_with_frames_queued_behind_a_busy_channel_is_not_ready() -> None:
    radio = rate_radio(9600.0, persist=255, txdelay=0.3, txtail=0.1)
    channel = channel_with({"a": radio, "b": radio})
    channel.offer("a", bytes(100), 0.0)
    channel.advance(0.2)
    channel.offer("b", bytes(40), 0.2)  # waits for A's transmission
    assert channel.readiness("b") == Readiness(1, 1, True)
    assert not channel.readiness("b").ready(1)


def test_the_airtime_is_counted_by_frame_head_apart_from_key_ups() -> None:
    """What the layers above spend the air on: frames and their data's seconds by their
    first bytes (short ones apart); the key-up and tail are the rest of the airtime."""
    radio = rate_radio(9600.0, persist=255, txdelay=0.030, txtail=0.010, burst=3)
    channel = channel_with({"a": radio, "b": radio})
    for frame in (b"\x20\x03\x01" + bytes(200), b"\x20\x03\x21" + bytes(200),
                  b"\x20\x03\x01" + bytes(200)):
        channel.offer("a", frame, 1.0)
    channel.offer("a", b"\x45\x00\x00" + bytes(40), 1.0)  # the next key-up: the burst is full
    run_until(channel, 10.0)
    heads = channel.stats("a").heads
    full = 203 * 8 / 9600
    assert heads == {"200301": [2, pytest.approx(2 * full)], "200321": [1, pytest.approx(full)],
                     "450000/small": [1, pytest.approx(43 * 8 / 9600)]}
    keying = channel.stats("a").airtime - sum(seconds for _, seconds in heads.values())
    assert keying == pytest.approx(2 * (0.030 + 0.010))
    for first in range(40):  # kinds beyond 32 are counted together
        channel.stats("b").count_head(bytes([first]) * 3, 0.1)
    assert len(channel.stats("b").heads) == 33 and channel.stats("b").heads["other"][0] == 8
