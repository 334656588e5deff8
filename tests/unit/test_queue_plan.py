"""When the link-aware queue runs and at what pace (wire/stack.py queue_wanted(),
datapath/pipeline.py validate()), and the sim: link's own figures (SendTiming) and word
(SendReadiness)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from linkbridge_sim.radio import mean_deferral

from linkbridge.datapath.endpoint import SendReadiness, SendTiming
from linkbridge.datapath.pipeline import (
    LinkBelow,
    LocalPorts,
    Lower,
    Pipeline,
    TunDevice,
    Upper,
    route_metrics,
    validate,
)
from linkbridge.errors import ConfigError
from linkbridge.plugin.registry import LinkRegistry
from linkbridge.testing import MemoryLink
from linkbridge.wire.frames import Layer
from linkbridge.wire.queue import DEFAULT_PACKETS
from linkbridge.wire.stack import Compress, Queue, queue_wanted


class TimedLink(MemoryLink):
    """A memory: link that declares a bit rate (SendTiming)."""

    def __init__(self, rate: float, options: Mapping[str, Any] | None = None) -> None:
        super().__init__("timed", options)
        self.rate = rate

    def frame_time(self, size: int) -> float:
        return size * 8 / self.rate

    def round_trip(self) -> float:
        return 3.0


class ReadyLink(TimedLink):
    """A TimedLink that also says when it is ready (SendReadiness): when `is_ready`, telling
    its listeners whenever `set_ready()` changes it."""

    def __init__(self, rate: float, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(rate, options)
        self.is_ready = True
        self.listeners: list[Callable[[], None]] = []

    def ready(self) -> bool:
        return self.is_ready

    def on_ready(self, listener: Callable[[], None]) -> None:
        self.listeners.append(listener)

    def set_ready(self, ready: bool) -> None:
        self.is_ready = ready
        for listener in self.listeners:
            listener()


def plan_over(link: MemoryLink, queue: Queue, compress: str = "off") -> Pipeline:
    return Pipeline(above=TunDevice(), upper=Upper(compress=Compress(compress), queue=queue),
                    lower=Lower(LinkBelow(link)))


@pytest.mark.parametrize(("mode", "frame_time", "runs"), [
    ("auto", 0.0, False), ("auto", 0.009, False), ("auto", 0.01, True), ("auto", 7.0, True),
    ("on", 0.001, True), ("off", 7.0, False)])
def test_queue_wanted_by_the_links_figures(mode: str, frame_time: float, runs: bool) -> None:
    assert queue_wanted(Queue(mode), frame_time) is runs


def test_a_rate_given_decides_over_the_links_figures() -> None:
    assert queue_wanted(Queue("auto", rate=9600), 0.0)
    assert not queue_wanted(Queue("auto", rate=10e6), 7.0)


@pytest.mark.parametrize(("queue", "message"), [
    (Queue("on"), "needs a pace"),
    (Queue("sometimes"), "choose one of auto, on, off"),
    (Queue("auto", rate=-1), "above 0"),
    (Queue("auto", limit=0), "above 0"),
])
def test_queue_refusals(queue: Queue, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        queue_wanted(queue, 0.0)


def test_validate_plans_the_queue_at_the_links_pace_above_compression() -> None:
    link = TimedLink(1200)
    assert isinstance(link, SendTiming)
    plan = validate(plan_over(link, Queue(), compress="auto"))
    assert plan.queue is not None
    assert plan.layers == (Layer.TUNNEL, Layer.QUEUE, Layer.COMPRESS, Layer.LINK)
    assert plan.queue.frame_time(150) == pytest.approx(1.0)
    assert (plan.queue.round_trip, plan.queue.limit) == (3.0, DEFAULT_PACKETS)


def test_validate_leaves_the_queue_out_on_a_fast_or_unknown_link() -> None:
    assert validate(plan_over(TimedLink(100e6), Queue())).queue is None
    assert validate(plan_over(MemoryLink("x"), Queue())).queue is None
    assert Layer.QUEUE not in validate(plan_over(MemoryLink("x"), Queue())).layers


def test_a_queue_rate_paces_a_link_without_figures() -> None:
    plan = validate(plan_over(MemoryLink("x", {"mtu": 256}), Queue("on", rate=1200, limit=9)))
    assert plan.queue is not None
    assert plan.queue.frame_time(150) == pytest.approx(1.0)
    assert plan.queue.round_trip == pytest.approx((256 + 64) * 8 / 1200)
    assert plan.queue.limit == 9


def test_a_queue_rate_over_local_ports() -> None:
    pipeline = Pipeline(above=TunDevice(), upper=Upper(queue=Queue("on", rate=9600)),
                        lower=Lower(LocalPorts(2001, 2002, "127.0.0.1")))
    assert validate(pipeline).queue is not None


def test_sim_link_figures_full_duplex(registry: LinkRegistry) -> None:
    link = registry.create_link("sim:127.0.0.1:9?rate=9600&overhead=8&delay=100ms&mtu=500")
    assert isinstance(link, SendTiming)
    assert link.frame_time(100) == pytest.approx(108 * 8 / 9600)
    assert link.round_trip() == pytest.approx(0.2 + (508 + 72) * 8 / 9600)
    assert registry.create_link("sim:127.0.0.1:9?delay=10ms").frame_time(1000) == 0.0


def test_sim_link_figures_half_duplex(registry: LinkRegistry) -> None:
    link = registry.create_link(
        "sim:127.0.0.1:9?duplex=half&rate=1200&txdelay=300ms&txtail=100ms&persist=63"
        "&slottime=100ms&slotwait=on&framing=ax25&mtu=256")
    assert isinstance(link, SendTiming)
    busy = link.frame_time(256)
    keyed = 0.3 + 0.1 + mean_deferral(63, 0.1, True)
    assert busy - keyed == pytest.approx(link.radio.airtime(256))  # type: ignore[attr-defined]
    assert 1.7 < busy - keyed < 2.3  # 256 bytes and AX.25 framing at 1200 bit/s
    assert link.round_trip() > busy
    assert validate(plan_over(link, Queue())).queue is not None  # type: ignore[arg-type]


def test_sim_link_figures_for_lora_frames_beyond_its_payload(registry: LinkRegistry) -> None:
    link = registry.create_link("sim:127.0.0.1:9?duplex=half&sf=10&bw=125k")
    assert isinstance(link, SendTiming)
    assert link.frame_time(1000) == pytest.approx(link.frame_time(250) * 4, rel=0.1)


def test_route_metrics_from_the_links_figures() -> None:
    plan = validate(plan_over(TimedLink(1200, {"mtu": 256}), Queue()))
    # a 256-byte frame takes 1.71 s at 1200 bit/s: two fit the 3 s round trip
    assert route_metrics(plan) == {"lock": 1 << 13, "rto_min": 3000, "initcwnd": 2}
    fast = validate(plan_over(TimedLink(64_000, {"mtu": 1000}), Queue("on")))
    assert route_metrics(fast)["initcwnd"] == 10  # 24 frames a round trip: Linux's 10
    assert route_metrics(validate(plan_over(TimedLink(1200), Queue("off")))) == {}


def test_sim_link_figures_share_a_key_up_over_a_burst(registry: LinkRegistry) -> None:
    one, many = (registry.create_link(f"sim:127.0.0.1:9?duplex=half&rate=1200&txdelay=300ms"
                                      f"&txtail=100ms&persist=255&burst={burst}&mtu=256")
                 for burst in (1, 4))
    assert isinstance(one, SendTiming) and isinstance(many, SendTiming)
    assert one.frame_time(256) - many.frame_time(256) == pytest.approx(0.4 * 3 / 4)


def test_a_link_that_says_when_it_is_ready_is_asked_unless_a_rate_is_given() -> None:
    link = ReadyLink(1200)
    assert isinstance(link, SendReadiness)
    pace = validate(plan_over(link, Queue())).queue
    assert pace is not None and pace.readiness is link
    paced = validate(plan_over(link, Queue("on", rate=2400))).queue
    assert paced is not None and paced.readiness is None
    timed = validate(plan_over(TimedLink(1200), Queue())).queue
    assert timed is not None and timed.readiness is None


def test_sim_radios_say_when_they_are_ready_full_duplex_does_not(
        registry: LinkRegistry) -> None:
    radio = registry.create_link("sim:127.0.0.1:9?duplex=half&rate=1200")
    station = registry.create_link("sim:127.0.0.1:9?duplex=half&rate=1200&station=a")
    pipe = registry.create_link("sim:127.0.0.1:9?rate=1200")
    assert isinstance(radio, SendReadiness) and isinstance(station, SendReadiness)
    assert not isinstance(pipe, SendReadiness)
    assert radio.ready()  # before the medium's first report
