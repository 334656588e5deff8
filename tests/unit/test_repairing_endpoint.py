"""The loss-repair layer as an endpoint (datapath/repairing.py) and in the pipeline: over
in-memory links that lose frames, with a simulated clock."""

from __future__ import annotations

import contextlib

import pytest

from linkbridge.datapath.endpoint import LossReporter
from linkbridge.datapath.pipeline import (
    REPAIR_NEEDS_LINK,
    LinkBelow,
    LocalPorts,
    Lower,
    Pipeline,
    TunDevice,
    Upper,
    open_lower,
    validate,
)
from linkbridge.datapath.repairing import RepairingEndpoint
from linkbridge.errors import ConfigError
from linkbridge.lab.layers import repair_lines as lab_repair_lines
from linkbridge.ops.metrics import exposition
from linkbridge.ops.status_data import TunnelStatus, parse_side
from linkbridge.ops.status_format import repair_lines
from linkbridge.testing import MemoryEndpoint, MemoryLink, memory_pair
from linkbridge.wire import drops
from linkbridge.wire.frames import Layer
from linkbridge.wire.repair import OVERHEAD
from linkbridge.wire.stack import Fragment, Repair


class Lossy(MemoryEndpoint):
    """Loses every `every`-th frame it sends (never, with 0), counting it on send as sim:
    does (a channel's loss, not a full queue: the layer repairs it)."""

    def __init__(self, name: str, every: int) -> None:
        super().__init__(name)
        self.every = every
        self.count = 0

    def send(self, packet: bytes) -> None:
        self.count += 1
        if self.every and self.count % self.every == 0:
            self.counters.drop("sim_loss")
            return
        super().send(packet)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def pair(mode: str, every: int, back_every: int = 0
         ) -> tuple[RepairingEndpoint, RepairingEndpoint, Clock]:
    clock = Clock()
    a, b = Lossy("a", every), Lossy("b", back_every)
    a.peer, b.peer = b, a
    return RepairingEndpoint(a, mode, clock=clock), RepairingEndpoint(b, mode, clock=clock), clock


def pump(a: RepairingEndpoint, b: RepairingEndpoint, clock: Clock, packets: list[bytes]
         ) -> list[bytes]:
    """`a` sends one packet every 20 ms; both sides run for 10 s more of simulated time."""
    got: list[bytes] = []
    for step in range(len(packets) * 2 + 1000):
        if step % 2 == 0 and step // 2 < len(packets):
            a.send(packets[step // 2])
        got += b.receive(0)
        a.receive(0)
        clock.now += 0.01
    return got


@pytest.mark.parametrize("mode", ["arq", "auto"])
def test_arq_delivers_what_the_link_loses(mode: str) -> None:
    a, b, clock = pair(mode, every=7)
    packets = [b"packet %d" % i for i in range(300)]
    assert pump(a, b, clock, packets) == packets
    status = a.counters.as_dict()["repair"]
    assert isinstance(status, dict) and status["retransmissions"] >= 300 // 7
    assert b.counters.rx_packets == 300 and a.counters.tx_packets == 300


def test_fec_repairs_without_a_round_trip() -> None:
    a, b, clock = pair("fec", every=10)
    a.machine.peer_loss = 0.1  # as if reported: redundancy from the first group
    packets = [b"packet %d" % i for i in range(400)]
    got = pump(a, b, clock, packets)
    assert len(got) >= 0.99 * len(packets) and len(set(got)) == len(got)
    figures = b.counters.as_dict()["repair"]
    assert isinstance(figures, dict) and figures["repaired"] > 0
    sent = a.counters.as_dict()["repair"]
    assert isinstance(sent, dict) and "retransmissions" not in sent and sent["parity_sent"]


def test_a_loss_given_up_is_an_event_for_the_layer_above_and_a_counted_drop() -> None:
    a, b, clock = pair("arq", every=2)  # half the frames, retransmissions too, are lost
    assert isinstance(b, LossReporter)
    heard: list[str] = []
    b.on_loss(heard.append)
    got = pump(a, b, clock, [b"packet %d" % i for i in range(200)])
    assert heard and set(heard) == {drops.REPAIR_UNREPAIRED}
    assert b.counters.drops[drops.REPAIR_UNREPAIRED] == len(heard)
    assert len(got) + len(heard) <= 200


def test_frames_below_carry_the_overhead() -> None:
    plain, _ = memory_pair()
    layer = RepairingEndpoint(plain, "arq")
    layer.send(b"x" * 100)
    assert len(plain.sent[0]) <= 100 + OVERHEAD
    assert layer.path_frame_size(500) == 500 - OVERHEAD


def test_the_plan_gives_the_layer_its_overhead_and_place() -> None:
    link = MemoryLink("x", {"mtu": 256})
    plan = validate(Pipeline(TunDevice(), Upper(), Lower(LinkBelow(link), repair=Repair("arq"))))
    assert plan.tunnel_mtu == 256 - OVERHEAD
    assert plan.layers == (Layer.TUNNEL, Layer.REPAIR, Layer.LINK)
    split = validate(Pipeline(TunDevice(1000), Upper(),
                              Lower(LinkBelow(link), Fragment("auto"), Repair("fec"))))
    assert split.fragment_frame == 256 - OVERHEAD
    assert split.layers == (Layer.TUNNEL, Layer.FRAGMENT, Layer.REPAIR, Layer.LINK)


def test_open_lower_puts_the_layer_right_above_the_link() -> None:
    link = MemoryLink("x", {"mtu": 256})
    with contextlib.ExitStack() as stack:
        opened = open_lower(Lower(LinkBelow(link), repair=Repair("arq")), None, stack)
        assert isinstance(opened, RepairingEndpoint) and opened.below is link


def test_bad_combinations_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match="--repair"):
        Repair("often")
    with pytest.raises(ConfigError) as error:
        validate(Pipeline(TunDevice(), Upper(),
                          Lower(LocalPorts(1, 2, "127.0.0.1"), repair=Repair("arq"))))
    assert str(error.value) == REPAIR_NEEDS_LINK


def test_status_parses_formats_and_exports_the_figures() -> None:
    a, b, clock = pair("arq", every=5)
    pump(a, b, clock, [b"packet %d" % i for i in range(100)])
    side = parse_side({"name": a.name, **a.counters.as_dict()}, "link")
    assert side.repair is not None and side.repair.mode == "arq"
    assert side.repair.retransmissions == a.machine.stats["retransmissions"] > 0
    assert side.below is not None and side.below.tx_packets >= 80  # the link, below
    tunnel = TunnelStatus(device="lb0", pid=1, link="memory:a", link_side=side)
    assert repair_lines([tunnel]) == [
        f"lb0: repair arq: {side.repair.retransmissions} retransmissions, 0 repaired, "
        f"0 unrepaired, 0 duplicates; loss in 0.0%, out {side.repair.peer_loss:.1%}; "
        f"rto {side.repair.rto_ms} ms, "
        "parity 0/16"]
    lab = lab_repair_lines((tunnel, tunnel))
    assert [line.split(":")[0] for line in lab] == ["  repair   A", "  repair   B"]
    assert lab[0].endswith(repair_lines([tunnel])[0].removeprefix("lb0: "))
    assert (f'linkbridge_repair_total{{tunnel="lb0",pid="1",link="memory:a",side="link",'
            f'event="retransmissions"}} {side.repair.retransmissions}') in exposition([tunnel])


class QueueFull(MemoryEndpoint):
    """Drops (and counts, as a link does) the frames sent while `full`."""

    full = False

    def send(self, packet: bytes) -> None:
        if self.full:
            self.counters.drop(drops.QUEUE_FULL)
            return
        super().send(packet)


def test_a_frame_the_link_drops_on_send_is_taken_back_not_repaired() -> None:
    clock = Clock()
    link, far = QueueFull("a"), MemoryEndpoint("b")
    link.peer, far.peer = far, link
    a, b = RepairingEndpoint(link, "arq", clock=clock), RepairingEndpoint(far, "arq", clock=clock)
    a.send(b"one")
    link.full = True
    a.send(b"dropped")
    link.full = False
    a.send(b"two")
    assert b.receive(0) == [b"one", b"two"]  # no gap: "two" took the dropped frame's number
    for _ in range(100):  # ten seconds: acknowledgements go back, nothing is due again
        clock.now += 0.1
        assert b.receive(0) == []
        a.receive(0)
    assert a.machine.stats["retransmissions"] == 0 and a.counters.tx_packets == 2
