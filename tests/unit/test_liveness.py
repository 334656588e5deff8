"""Link liveness (wire/liveness.py), keepalive frames (wire/packet.py, datapath/keepalive.py)."""

from __future__ import annotations

import pytest

from linkbridge.datapath.bridge import Direction
from linkbridge.datapath.keepalive import KeepaliveSource
from linkbridge.testing import MemoryEndpoint, memory_pair
from linkbridge.wire.drops import KEEPALIVE, NOT_IP
from linkbridge.wire.frames import KEEPALIVE_FRAME, Status, classify
from linkbridge.wire.liveness import LinkState, Liveness, Thresholds, keepalive_due
from linkbridge.wire.packet import drop_reason, packet_problem


def test_thresholds_follow_keepalive_then_link_timeout() -> None:
    assert Thresholds.choose(2.0, None) == Thresholds(3.0, 4.5)
    assert Thresholds.choose(2.0, 10.0) == Thresholds(6.0, 10.0)
    assert Thresholds.choose(None, None).down_after == 120.0


def test_state_follows_received_frames() -> None:
    live = Liveness(Thresholds(3.0, 5.0), now=0.0)
    assert live.state == LinkState.DOWN
    assert live.observe(0, 10.0) is None  # nothing ever heard: stays down
    change = live.observe(1, 10.5)
    assert change is not None and (change.old, change.new) == ("down", "up")
    assert live.observe(1, 13.0) is None  # 2.5 s of silence: still up
    change = live.observe(1, 13.6)
    assert change is not None and change.new == LinkState.STALE
    assert change.reason == "no frame for 3.1 s"
    assert live.observe(1, 15.4) is None  # 4.9 s: still stale
    assert live.observe(1, 15.5) is not None and live.state == LinkState.DOWN
    assert live.silent_for(15.5) == pytest.approx(5.0)
    change = live.observe(2, 16.0)
    assert change is not None and (change.old, change.new) == ("down", "up")
    assert live.since == 16.0


def test_stale_recovers_without_going_down() -> None:
    live = Liveness(Thresholds(1.0, 2.0), now=0.0)
    live.observe(1, 0.0)
    assert live.observe(1, 1.5) is not None and live.state == LinkState.STALE
    change = live.observe(5, 1.6)
    assert change is not None and (change.old, change.new) == ("stale", "up")


def test_keepalive_frame_has_its_slot_and_is_no_packet() -> None:
    kind = classify(KEEPALIVE_FRAME[0])
    assert kind is not None and kind.name == "keepalive" and kind.status == Status.IN_USE
    assert packet_problem(KEEPALIVE_FRAME) == KEEPALIVE
    assert drop_reason(KEEPALIVE) == "keepalive"
    assert packet_problem(b"\x00\x00") == NOT_IP  # only the one-byte frame is a keepalive
    assert drop_reason(NOT_IP) == "malformed_not_ip"


def test_keepalive_due() -> None:
    assert not keepalive_due(10.0, 5.0, 14.9)
    assert keepalive_due(10.0, 5.0, 15.0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_keepalive_source_speaks_only_after_silence() -> None:
    clock = Clock()
    device = MemoryEndpoint("tun")
    source = KeepaliveSource(device, 5.0, clock)
    assert source.counters is device.counters
    clock.now = 4.0
    assert source.receive(0) == []
    device.feed(b"packet")
    clock.now = 8.0
    assert source.receive(0) == [b"packet"]  # traffic resets the interval
    clock.now = 12.9
    assert source.receive(0) == []
    clock.now = 13.0
    assert source.receive(0) == [KEEPALIVE_FRAME]
    assert source.receive(0) == []
    assert source.sent == 1


def test_received_keepalive_is_counted_and_never_delivered() -> None:
    link, tun = memory_pair()
    link.feed(KEEPALIVE_FRAME, KEEPALIVE_FRAME)
    Direction("to-tunnel", link, tun, packet_problem).move(0)
    assert tun.counters.tx_packets == 0
    assert link.counters.drops == {"keepalive": 2}
