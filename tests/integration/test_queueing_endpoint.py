"""The link-aware queue as a layer (datapath/queueing.py, built by datapath/pipeline.py): its
sender thread paces the link below, small packets overtake a backlog, drops are counted by
reason, and build() puts it above compression and stops it on unwind. In memory, on wall
time (a thread), so here and not in tests/unit."""

from __future__ import annotations

import contextlib
import ipaddress
import time

from linkbridge.datapath.compressing import CompressingEndpoint
from linkbridge.datapath.multipoint import PeerRouter
from linkbridge.datapath.pipeline import build, validate
from linkbridge.datapath.queueing import LinkSender, QueueingEndpoint, rate_frame_time
from linkbridge.testing import MemoryEndpoint
from linkbridge.wire.drops import QUEUE_ACK_FILTERED, QUEUE_RETRANSMIT
from linkbridge.wire.queue import LinkQueue
from linkbridge.wire.stack import Queue
from tests.helpers.ip_packets import echo, tcp
from tests.helpers.waiting import wait_for
from tests.unit.test_multipoint import B, C, Stations, multipoint
from tests.unit.test_queue_plan import ReadyLink, TimedLink, plan_over

FRAME = 0.05  # seconds each frame keeps the link busy
BULK = b"d" * 200


def wait_sent(endpoint: MemoryEndpoint, count: int) -> None:
    """Wait (5 s at most) until `endpoint` holds `count` frames sent."""
    wait_for(lambda: len(endpoint.sent) == count, 5.0,
             lambda: f"{count} frames sent ({len(endpoint.sent)} so far)", interval=0.005)


def test_paced_sends_small_first_and_counted_drops() -> None:
    below = MemoryEndpoint("link")
    layer = QueueingEndpoint(below, LinkQueue(round_trip=10.0), LinkSender("t", lambda _: FRAME))
    try:
        started = time.monotonic()
        bulk = [tcp(seq=1 + 200 * i, payload=BULK) for i in range(4)]
        layer.send(bulk[0])
        wait_sent(below, 1)  # on the link: the rest waits its turn
        for packet in bulk[1:]:
            layer.send(packet)
        ping = echo()
        layer.send(ping)
        layer.send(bulk[2])  # a retransmission of a queued segment
        layer.send(tcp(ack=500, sport=22, dport=40000))
        newer = tcp(ack=900, sport=22, dport=40000)
        layer.send(newer)  # supersedes the ACK before it
        wait_sent(below, 6)
        elapsed = time.monotonic() - started
        assert below.sent == [bulk[0], ping, newer, *bulk[1:]]
        assert elapsed >= 5 * FRAME
        assert layer.counters.drops == {QUEUE_RETRANSMIT: 1, QUEUE_ACK_FILTERED: 1}
        status = layer.counters.as_dict()
        assert status["tx_packets"] == 6
        assert status["queue"] == {"packets": 0, "bytes": 0, "round_trip": 10.0}
        assert status["frames"] == below.counters.as_dict()
    finally:
        layer.close()
    assert below.closed


def test_a_link_that_says_when_it_is_ready_gets_the_newest_ack_only() -> None:
    """While the link is not ready (its channel busy), ACKs wait in the queue, where a newer
    one drops the older; no rate paces it: once ready, everything goes, small first."""
    link = ReadyLink(1.0)  # a rate that would pace one frame a minute
    link.open()
    link.set_ready(False)
    layer = QueueingEndpoint(link, LinkQueue(round_trip=10.0),
                             LinkSender("t", link.frame_time, readiness=link))
    try:
        acks = [tcp(ack=ack, sport=22, dport=40000) for ack in (500, 900, 1300)]
        bulk = tcp(seq=1, payload=BULK)
        for packet in (bulk, *acks):
            layer.send(packet)
        time.sleep(0.1)
        assert link.sent == []
        link.set_ready(True)
        wait_sent(link, 2)
        assert link.sent == [acks[-1], bulk]
        assert layer.counters.drops == {QUEUE_ACK_FILTERED: 2}
    finally:
        layer.close()


def test_a_retransmission_within_a_round_trip_of_its_send_is_dropped() -> None:
    below = MemoryEndpoint("link")
    layer = QueueingEndpoint(below, LinkQueue(round_trip=0.3),
                             LinkSender("t", rate_frame_time(1e6)))
    try:
        syn = tcp(seq=9, ack=0, flags=0x02)
        layer.send(syn)
        wait_sent(below, 1)
        layer.send(syn)
        time.sleep(0.4)
        layer.send(syn)  # a round trip later: the first may be lost
        wait_sent(below, 2)
        assert layer.counters.drops == {QUEUE_RETRANSMIT: 1}
    finally:
        layer.close()


def test_frames_from_below_pass_up() -> None:
    below = MemoryEndpoint("link")
    layer = QueueingEndpoint(below, LinkQueue(round_trip=1.0), LinkSender("t", lambda _: 0.0))
    try:
        below.feed(b"one", b"two")
        assert layer.receive(1.0) == [b"one", b"two"]
        assert layer.counters.rx_packets == 2
    finally:
        layer.close()


def test_build_puts_the_queue_above_compression_and_stops_it() -> None:
    link = TimedLink(1e5)
    plan = validate(plan_over(link, Queue("on"), compress="auto"))
    with contextlib.ExitStack() as stack:
        opened = build(plan, stack, MemoryEndpoint("tun"))  # type: ignore[arg-type]
        side = opened.link_side
        assert isinstance(side, QueueingEndpoint)
        assert isinstance(side.below, CompressingEndpoint)
        side.send(echo())
        wait_sent(link, 1)
        assert plan.queue is not None and plan.queue.lead > 0
        queue = side.counters.as_dict()["queue"]  # a segment's round trip: after the lead
        assert queue["round_trip"] == round(3.0 + plan.queue.lead, 3)  # type: ignore[index]
        thread = side.sender._thread
    assert not thread.is_alive()


class ReadyStations(Stations):
    """An in-memory addressed link with a rate and a readiness of its own (ReadyLink's)."""

    def __init__(self) -> None:
        super().__init__()
        self.timing = ReadyLink(1200)
        self.frame_time, self.round_trip = self.timing.frame_time, self.timing.round_trip
        self.ready, self.on_ready = self.timing.ready, self.timing.on_ready


def test_a_multipoint_tunnel_queues_per_peer_and_serves_the_peers_in_turn() -> None:
    """Each peer's stack gets its own queue over the shared link, one sender serving them in
    turn when the link is ready: a packet for c goes between b's, and the ACK filter acts
    within c's flow."""
    link = ReadyStations()
    link.timing.set_ready(False)
    plan = validate(multipoint(B, C, link=link, queue=Queue()))
    to_b, to_c = (ipaddress.ip_address(address).packed for address in ("198.19.2.9", "198.19.3.9"))
    bulk = [tcp(seq=1 + 200 * i, payload=BULK, dst=to_b) for i in range(3)]
    acks = [tcp(ack=ack, dst=to_c) for ack in (500, 900)]
    with contextlib.ExitStack() as stack:
        routed = build(plan, stack, MemoryEndpoint("tun")).link_side  # type: ignore[arg-type]
        assert isinstance(routed, PeerRouter)
        for packet in (*bulk, *acks):
            routed.send(packet)
        link.timing.set_ready(True)
        wait_sent(link, 4)
        peers = routed.counters.as_dict()["peers"]
    assert link.sent == [("127.0.0.1:5002", bulk[0]), ("127.0.0.1:5003", acks[1]),
                         ("127.0.0.1:5002", bulk[1]), ("127.0.0.1:5002", bulk[2])]
    assert isinstance(peers, dict)
    assert peers["c"]["drops"] == {QUEUE_ACK_FILTERED: 1} and peers["b"]["drops"] == {}


def test_a_closed_queue_leaves_the_sender_and_the_last_ends_it() -> None:
    sender = LinkSender("shared", lambda _: 0.0)
    first, second = MemoryEndpoint("b"), MemoryEndpoint("c")
    lanes = [QueueingEndpoint(below, LinkQueue(round_trip=1.0), sender)
             for below in (first, second)]
    lanes[0].close()
    lanes[1].send(echo())
    wait_sent(second, 1)
    assert first.closed and sender._thread.is_alive()
    lanes[1].close()
    sender._thread.join(5.0)
    assert not sender._thread.is_alive()


def test_compressed_packets_are_paced_by_their_size_on_the_link() -> None:
    """Over the compress layer (Resizing), a packet costs the link the time of the frame it
    became, not of its size at the queue: paced by the packets' own size, these 20 segments
    would take 20 frame times of 50 bytes (1 s); compressed, a third of that."""
    below = MemoryEndpoint("link")
    compress = CompressingEndpoint(below, "auto")
    rate = 50 * 8 / FRAME  # bit/s: a 50-byte packet keeps the link busy for FRAME
    layer = QueueingEndpoint(compress, LinkQueue(round_trip=10.0),
                             LinkSender("t", rate_frame_time(rate)))
    segments = [tcp(seq=1 + 10 * i, payload=b"d" * 10) for i in range(20)]
    try:
        started = time.monotonic()
        for segment in segments:
            layer.send(segment)
        wait_sent(below, len(segments))
        elapsed = time.monotonic() - started
    finally:
        layer.close()
    assert {len(segment) for segment in segments} == {50}
    on_the_link = sum(map(len, below.sent))
    assert on_the_link < len(segments) * 50 / 2  # compressed: the test's premise
    # every frame but the last waited for the one before it to leave the link
    assert elapsed >= (on_the_link - len(below.sent[-1])) * 8 / rate
    assert elapsed < 0.7 * len(segments) * FRAME
