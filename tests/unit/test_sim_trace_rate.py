"""Mahimahi trace-driven rate (`rate_trace=`) and the half-duplex radio options of sim:, as pure
logic on a simulated clock."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from linkbridge_sim.config import SimConfig
from linkbridge_sim.decisions import RandomDecisions
from linkbridge_sim.impairment import Impairment
from linkbridge_sim.links import SimLink
from linkbridge_sim.mahimahi import MAHIMAHI_MTU, TraceRate, parse_trace
from linkbridge_sim.options import LINK_OPTIONS, half_duplex_config
from linkbridge_sim.radio import RadioSettings

from linkbridge.errors import ConfigError
from linkbridge.plugin import LinkUrl, resolve_options

# A small trace of our own, 250 ms long: a fast burst (2 opportunities per ms for 50 ms), a
# slow stretch (one every 5 ms), a 50 ms outage, then one per ms.
SMALL_TRACE = ([t for t in range(1, 51) for _ in (0, 1)] + list(range(55, 150, 5))
               + list(range(201, 251)))


def trace_text(stamps: list[int]) -> str:
    return "".join(f"{stamp}\n" for stamp in stamps)


def test_a_trace_parses_and_bad_ones_name_the_line() -> None:
    assert parse_trace("1\n1\n\n5\n") == (1, 1, 5)
    for text, message in (("", "at least one"), ("0\n", "at least one"), ("3\n2\n", "line 2"),
                          ("1\nabc\n", "line 2"), ("1.5\n", "line 1"), ("-3\n", "line 1")):
        with pytest.raises(ValueError, match=message):
            parse_trace(text)


def test_packets_take_parts_of_several_opportunities_in_order() -> None:
    rate = TraceRate([10, 20, 30, 40], origin=0.0)
    assert rate.finish(1000, 0.0) == 0.010  # 504 bytes of opportunity 1 are left
    assert rate.finish(1000, 0.0) == 0.020  # 504 of it, then 496 of the second
    assert rate.finish(3000, 0.0) == 0.040  # 1008 left of the 2nd, 1504 of the 3rd, 488 of 4th
    assert rate.finish(100, 0.045) == pytest.approx(0.050)  # loops: 10 ms after 40 (wasted rest)
    assert rate.finish(100, 0.055) == pytest.approx(0.060)  # unused opportunities are lost


def test_a_saturating_sender_gets_the_traces_capacity_in_every_100ms_window() -> None:
    """Bytes delivered per 100 ms window = the trace's capacity within max(5%, 1504 B)."""
    stamps = parse_trace(trace_text(SMALL_TRACE))
    config = SimConfig(rate_trace=stamps, limit=100_000)
    model = Impairment(config, RandomDecisions(config, random.Random(1)))
    rng = random.Random(4)
    delivered: list[tuple[float, int]] = []
    for index in range(20_000):  # offered much faster than the trace drains them
        packet = bytes(rng.randrange(40, 1500))
        for release in model.offer(packet, index * 0.0001).releases:
            delivered.append((release.at, len(release.packet)))
    last = max(at for at, _ in delivered)
    reference = TraceRate(stamps, origin=0.0)
    windows = int(last / 0.1) - 1
    assert windows >= 30  # more than ten loops of the trace
    for window in range(windows):  # edges half a millisecond off the trace's millisecond grid
        start, end = window * 0.1 + 0.0005, (window + 1) * 0.1 + 0.0005
        got = sum(size for at, size in delivered if start <= at < end)
        capacity = reference.capacity(start, end)
        assert abs(got - capacity) <= max(0.05 * capacity, MAHIMAHI_MTU), (window, got, capacity)


def test_a_trace_rate_keeps_packets_in_order_and_respects_the_queue_limit() -> None:
    config = SimConfig(rate_trace=(10,), limit=3)
    model = Impairment(config, RandomDecisions(config, random.Random(1)))
    outcomes = [model.offer(bytes(1504), 0.0) for _ in range(5)]
    assert [r.at for o in outcomes for r in o.releases] == pytest.approx([0.01, 0.02, 0.03])
    assert [o.drops for o in outcomes[3:]] == [["queue_full"], ["queue_full"]]


# Options --------------------------------------------------------------------------------------


def configure(**raw: str) -> tuple[SimConfig, RadioSettings | None]:
    values: dict[str, Any] = resolve_options("link sim:", LINK_OPTIONS, raw)
    config, radio, _ = half_duplex_config("link sim:", values)
    return config, radio


def test_half_duplex_takes_the_rate_for_its_radio() -> None:
    config, radio = configure(duplex="half", rate="9600", persist="255", txdelay="30ms",
                              txtail="10ms", duty="1%", duty_window="1h", loss="1%")
    assert config.rate is None and config.loss == 0.01
    assert radio == RadioSettings(rate=9600.0, persist=255, txdelay=0.030, txtail=0.010,
                                  duty=0.01, duty_window=3600.0)


def test_reception_options_reach_the_radio() -> None:
    _, radio = configure(duplex="half", rate="1200", rxloss="10%", level="-3.5dB", capture="6")
    assert radio is not None
    assert (radio.rxloss, radio.level, radio.capture) == (0.1, -3.5, 6.0)
    channel_radio = radio.radio()
    assert (channel_radio.rxloss, channel_radio.level, channel_radio.capture) == (0.1, -3.5, 6.0)
    assert "rxloss 10% level -3.5dB capture 6dB" in radio.describe()
    assert RadioSettings.from_record(radio.to_record()) == radio


def test_queue_options_go_to_the_radio_with_half_duplex() -> None:
    config, radio = configure(duplex="half", rate="1200", limit_bytes="3000", codel="on",
                              codel_target="1s", codel_interval="10s")
    assert radio is not None and (radio.limit_bytes, radio.codel) == (3000, (1.0, 10.0))
    assert (config.limit_bytes, config.codel) == (None, None)  # not twice
    assert RadioSettings.from_record(radio.to_record()) == radio
    with pytest.raises(ValueError, match="codel must be"):
        RadioSettings.from_record({"rate": 1200, "codel": 5})
    full, _ = configure(rate="1mbit", limit_bytes="30000", codel="on")
    assert (full.limit_bytes, full.codel) == (30000, (0.005, 0.1))
    assert "limit 30000 bytes codel target 5ms interval 100ms" in full.describe()


def test_lora_caps_the_mtu_at_255_and_reads_its_settings() -> None:
    config, radio = configure(duplex="half", sf="9", bw="125k", cr="4/5", preamble="8",
                              header="explicit", crc="on", ldro="off")
    assert config.mtu == 255
    assert radio is not None and radio.lora is not None
    assert radio.airtime(50) == pytest.approx(0.328704)
    assert configure(duplex="half", sf="7", mtu="100")[0].mtu == 100


def test_a_trace_file_drives_the_rate(tmp_path: Path) -> None:
    trace = tmp_path / "link.trace"
    trace.write_text(trace_text(SMALL_TRACE))
    config, radio = configure(rate_trace=str(trace))
    assert config.rate_trace == tuple(SMALL_TRACE) and radio is None
    assert "rate trace" in config.describe()
    # the lab sizes its transfer and reports the rate by the trace's mean: 169 x 1504 B / 250 ms
    figures = SimLink.lab_configured(LinkUrl("sim", "", {"rate_trace": str(trace)}))
    assert figures is not None
    assert figures[0].rate == pytest.approx(169 * 1504 * 8 / 0.250)


@pytest.mark.parametrize(("raw", "message"), [
    ({"persist": "10"}, "persist needs duplex=half"),
    ({"sf": "9"}, "sf needs duplex=half"),
    ({"framing": "ax25", "rate": "1200"}, "framing needs duplex=half"),
    ({"duplex": "half", "sf": "9", "framing": "hdlc"}, "framing and overhead need rate="),
    ({"duplex": "half", "sf": "9", "overhead": "4"}, "overhead needs rate="),
    ({"duplex": "half", "rate": "1200", "framing": "x25"}, "expected one of none, hdlc, ax25"),
    ({"duplex": "half", "rate": "1200", "burst": "0"}, "burst"),
    ({"duplex": "half", "rate": "1200", "capture": "-3dB"}, "capture >= 0 dB"),
    ({"duplex": "half", "rate": "1200", "level": "loud"}, "expected decibels"),
    ({"rxloss": "5%"}, "rxloss needs duplex=half"),
    ({"rate": "9600", "codel_target": "5ms"}, "codel_target needs codel=on"),
    ({"codel": "on", "delay": "5ms"}, "codel needs a queue that drains at a rate"),
    ({"rate": "9600", "limit_bytes": "0"}, "must be >= 1"),
    ({"duplex": "half"}, "needs the radio's rate= or LoRa's sf="),
    ({"duplex": "half", "rate": "9600", "sf": "9"}, "not both"),
    ({"duplex": "half", "rate": "9600", "bw": "125k"}, "bw needs sf="),
    ({"duplex": "half", "sf": "9", "mtu": "300"}, "exceeds LoRa's 255-byte"),
    ({"duplex": "half", "sf": "12", "duty": "0.1%", "duty_window": "10s"}, "duty cycle's budget"),
    ({"duplex": "half", "rate": "9600", "rate_trace": "/dev/null"}, "rate_trace"),
    ({"duplex": "quarter"}, "expected one of full, half"),
    ({"duplex": "half", "rate": "9600", "persist": "256"}, "must be <= 255"),
    ({"duplex": "half", "sf": "9", "cr": "4/9"}, "coding rate"),
    ({"duplex": "half", "sf": "9", "bw": "wide"}, "bandwidth"),
    ({"duplex": "half", "rate": "9600", "duty": "0%"}, "must be > 0%"),
    ({"duplex": "half", "rate": "9600", "duty": "1%", "duty_window": "soon"}, "window"),
    ({"rate": "9600", "rate_trace": "/nonexistent/trace"}, "cannot read"),
])
def test_bad_radio_options_are_one_line_errors(raw: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        configure(**raw)
    assert "\n" not in str(info.value)


def test_rate_and_a_rate_trace_exclude_each_other(tmp_path: Path) -> None:
    trace = tmp_path / "t"
    trace.write_text("5\n10\n")
    with pytest.raises(ConfigError, match="rate= or rate_trace="):
        configure(rate="9600", rate_trace=str(trace))
