"""The loss-repair layer's pure logic (wire/arq.py, fec.py, repair.py): two Repair machines
over a simulated channel with loss, delay and reordering, driven by a simulated clock."""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from linkbridge.wire import drops
from linkbridge.wire.arq import HALF, WINDOW, Ack, retries_for
from linkbridge.wire.fec import (
    GROUP,
    MAX_PARITY,
    TARGET,
    FecReceiver,
    FecSender,
    redundancy,
    residual,
)
from linkbridge.wire.frames import EXTENSION_HEADER, REPAIR, extension_header, extension_subtype
from linkbridge.wire.repair import (
    ACK,
    DATA,
    OVERHEAD,
    REPORT_SOON,
    LinkRepair,
    Settings,
    link_settings,
    parse,
)

STEP = 0.01  # s of simulated time per step


@dataclass
class Channel:
    """One direction: each frame lost with `loss`, else delivered after `delay` plus up to
    `jitter` (frames overtake each other when jitter exceeds their spacing)."""

    rng: random.Random
    loss: float
    delay: float = 0.1
    jitter: float = 0.0
    queue: list[tuple[float, int, bytes]] = field(default_factory=list)
    sent: int = 0

    def put(self, frame: bytes, now: float) -> None:
        self.sent += 1
        if self.rng.random() >= self.loss:
            at = now + self.delay + self.rng.random() * self.jitter
            heapq.heappush(self.queue, (at, self.sent, frame))

    def due(self, now: float) -> list[bytes]:
        out = []
        while self.queue and self.queue[0][0] <= now:
            out.append(heapq.heappop(self.queue)[2])
        return out


@dataclass
class Run:
    delivered: list[bytes]
    lost: int
    a: LinkRepair
    b: LinkRepair
    forward: Channel


def run(mode: str, payloads: list[bytes], *, loss: float = 0.0, back_loss: float | None = None,
        seed: int = 1, jitter: float = 0.0, every: int = 5, reverse: bool = False) -> Run:
    """A sends `payloads`, one every `every` steps (B answers each with a frame when
    `reverse`); then both run until nothing waits. Time jumps from event to event."""
    rng = random.Random(seed)
    a, b = LinkRepair(mode), LinkRepair(mode)
    ab = Channel(rng, loss, jitter=jitter)
    ba = Channel(rng, loss if back_loss is None else back_loss, jitter=jitter)
    delivered: list[bytes] = []
    lost = 0
    now = 0.0
    pending = list(payloads)
    next_send = 0.0
    for _ in range(200_000):
        if pending and next_send <= now:
            for frame in a.send(pending.pop(0), now):
                ab.put(frame, now)
            next_send = now + every * STEP
        for frame in ab.due(now):
            for item in b.receive(frame, now):
                if item is None:
                    lost += 1
                else:
                    delivered.append(item)
                    if reverse:
                        for back in b.send(b"re:" + item, now):
                            ba.put(back, now)
        for frame in ba.due(now):
            a.receive(frame, now)
        for machine, channel in ((a, ab), (b, ba)):
            frames, items = machine.tick(now)
            for frame in frames:
                channel.put(frame, now)
            if machine is b:
                lost += sum(item is None for item in items)
                delivered += [item for item in items if isinstance(item, bytes)]
        assert a.sender.outstanding <= WINDOW
        assert len(b.receiver._ahead) <= WINDOW
        events = [t for t in (a.deadline(), b.deadline(), next_send if pending else None,
                              ab.queue[0][0] if ab.queue else None,
                              ba.queue[0][0] if ba.queue else None) if t is not None]
        if not events:
            return Run(delivered, lost, a, b, ab)
        assert min(events) > now or min(events) == next_send, "a deadline that is past"
        now = max(now, min(events))
    raise AssertionError("the machines never settle")


def payloads(count: int) -> list[bytes]:
    return [f"packet {i:05d}".encode() * (1 + i % 7) for i in range(count)]


@pytest.mark.parametrize("mode", ["arq", "fec", "auto"])
def test_lossless_delivers_everything_in_order_once_without_repair(mode: str) -> None:
    sent = payloads(300)
    result = run(mode, sent)
    assert result.delivered == sent
    assert result.lost == 0
    assert result.a.stats["retransmissions"] == 0
    assert result.a.stats["parity_sent"] == 0  # no loss measured: no redundancy
    assert result.b.stats["duplicates"] == 0


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), loss=st.floats(0, 0.5), jitter=st.floats(0, 0.3),
       mode=st.sampled_from(["arq", "fec", "auto"]), reverse=st.booleans(),
       every=st.integers(1, 20))
@example(seed=17422, loss=0.25, jitter=0.125, mode="auto", reverse=False, every=3)  # see below
def test_every_frame_is_delivered_at_most_once_or_reported_lost(
        seed: int, loss: float, jitter: float, mode: str, reverse: bool, every: int) -> None:
    sent = payloads(120)
    result = run(mode, sent, loss=loss, seed=seed, jitter=jitter, reverse=reverse, every=every)
    assert len(set(result.delivered)) == len(result.delivered)
    assert set(result.delivered) <= set(sent)
    # every frame up to the last delivered is delivered or reported lost (a loss after it
    # shows only when a later frame comes)
    last = max((sent.index(p) for p in result.delivered), default=-1)
    assert last + 1 <= len(result.delivered) + result.lost <= len(sent)
    if mode != "fec":  # ARQ delivers in order
        assert result.delivered == sorted(result.delivered, key=sent.index)


@pytest.mark.parametrize("reverse", [False, True])
def test_arq_repairs_ten_percent_loss_with_bounded_retransmissions(reverse: bool) -> None:
    sent = payloads(2000)
    result = run("arq", sent, loss=0.1, seed=7, reverse=reverse)
    assert len(result.delivered) >= 0.995 * len(sent)
    assert result.delivered == sorted(result.delivered, key=sent.index)
    limit = retries_for(result.a.rtt.rto)
    assert result.a.stats["retransmissions"] <= len(sent) * limit
    assert result.forward.sent < 1.3 * len(sent)  # data, retransmissions; ACKs go the other way


def test_arq_piggybacks_acknowledgements_on_reverse_traffic() -> None:
    result = run("arq", payloads(500), loss=0.05, seed=3, reverse=True, every=20)
    plain = run("arq", payloads(500), loss=0.05, seed=3, every=20)
    assert result.b.stats["acks_sent"] < plain.b.stats["acks_sent"] / 2


def test_arq_batches_acknowledgements() -> None:
    result = run("arq", payloads(500), every=1)
    assert result.b.stats["acks_sent"] < 500 / 5


def test_arq_gives_up_within_its_persistence_and_reports_the_loss() -> None:
    sent = payloads(200)
    result = run("arq", sent, loss=0.5, back_loss=0.0, seed=5)
    assert result.lost > 0
    assert result.b.stats["unrepaired"] == result.lost
    assert result.a.stats["given_up"] > 0
    assert result.delivered == sorted(result.delivered, key=sent.index)


def test_fec_repairs_without_a_round_trip_and_never_holds_intact_frames() -> None:
    sent = payloads(3000)
    result = run("fec", sent, loss=0.1, seed=11)
    assert result.a.stats["retransmissions"] == 0
    assert result.a.fec_out.parity >= redundancy(0.05, GROUP) > 0
    assert result.b.stats["repaired"] > 0
    # after the first loss report (the first few seconds) FEC delivers >= 99%
    late = set(sent[500:])
    assert len(late & set(result.delivered)) >= 0.99 * len(late)


def test_fec_delivers_intact_frames_at_once() -> None:
    b = LinkRepair("fec")
    a = LinkRepair("fec")
    frames = a.send(b"one", 0.0) + a.send(b"two", 0.0) + a.send(b"three", 0.0)
    assert b.receive(frames[0], 0.0) == [b"one"]
    assert b.receive(frames[2], 0.0) == [b"three"]  # "two" is missing: "three" is not held
    _, items = b.tick(Settings().fec_hold)
    assert items == [None]  # the frame lost


def test_measured_loss_reaches_the_sender() -> None:
    result = run("fec", payloads(2000), loss=0.2, back_loss=0.0, seed=2)
    assert 0.12 < result.a.peer_loss < 0.3


def test_redundancy_follows_loss() -> None:
    assert redundancy(0.0, GROUP) == 0
    parities = [redundancy(loss, GROUP) for loss in (0.01, 0.05, 0.1, 0.2)]
    assert parities == sorted(parities) and parities[0] >= 1
    for loss, r in zip((0.01, 0.05, 0.1, 0.2), parities, strict=True):
        assert r == MAX_PARITY or residual(GROUP, r, loss) <= TARGET


def test_fec_rebuilds_any_k_of_a_group() -> None:
    sender = FecSender(group_wait=1.0)
    sender.parity = 3
    group = [bytes([i]) * (10 + i) for i in range(GROUP)]
    parity = [p for seq, payload in enumerate(group) for p in sender.add(seq, payload, 0.0)]
    assert len(parity) == 3
    for lost in ([0, 1, 2], [5], [7, 3]):
        receiver = FecReceiver(missing=lambda seq, lost=lost: seq in lost)
        for seq, payload in enumerate(group):
            if seq not in lost:
                receiver.data(seq, payload)
        rebuilt = [item for p in parity for item in receiver.parity(p)]
        assert sorted(rebuilt) == sorted((seq, group[seq]) for seq in lost)


def test_a_short_group_closes_after_its_wait() -> None:
    sender = FecSender(group_wait=0.5)
    sender.parity = 2
    for seq in range(5):  # steady frames: the group waits its whole wait
        assert sender.add(seq, b"steady", seq * 0.1) == []
    assert sender.deadline() == 0.5
    assert sender.due(0.45) == []
    parity = sender.due(0.5)
    assert [p.k for p in parity] == [5] and len(parity) == 1


def test_a_group_closes_when_the_traffic_stops() -> None:
    """A quarter of its wait after its last frame: the repair of a burst's last frames does
    not wait for frames that do not come."""
    sender = FecSender(group_wait=2.0)
    sender.parity = 4
    assert sender.add(0, b"last", 0.0) == []
    assert sender.deadline() == 0.5
    assert [p.k for p in sender.due(0.5)] == [1]


def test_ack_covers_what_it_names() -> None:
    ack = Ack(10, 0b101)
    assert ack.covers(9) and ack.covers(11) and ack.covers(13)
    assert not ack.covers(10) and not ack.covers(12) and not ack.covers(10 + HALF - 1)


def test_a_restarted_peer_is_followed() -> None:
    first = LinkRepair("arq")
    b = LinkRepair("arq")
    for i in range(100):
        for frame in first.send(b"%d" % i, 0.0):
            b.receive(frame, 0.0)
    again = LinkRepair("arq")
    assert b.receive(again.send(b"fresh", 1.0)[0], 1.0) == [b"fresh"]


def test_frames_of_a_peer_without_the_layer_pass_up() -> None:
    assert LinkRepair("arq").receive(b"\x45plain", 0.0) == [b"\x45plain"]


def test_an_acknowledgement_rides_on_a_data_frame_only_where_it_fits() -> None:
    a, b = LinkRepair("arq"), LinkRepair("arq", mtu=100 + OVERHEAD)
    b.receive(a.send(b"x", 0.0)[0], 0.0)
    full = b.send(b"y" * 100, 0.0)[0]  # no room for the acknowledgement
    assert len(full) == 100 + OVERHEAD and extension_subtype(full) == REPAIR
    acks, _ = b.tick(Settings().ack_delay)  # it goes on its own
    assert len(acks) == 1 and parse(acks[0]) is not None and parse(acks[0])[0] == ACK
    b.receive(a.send(b"x", 0.0)[0], 0.0)
    small = b.send(b"y" * 50, 0.0)[0]  # room: it rides along
    assert len(small) > 50 + OVERHEAD and b.tick(Settings().ack_delay)[0] == []


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=40))
def test_malformed_repair_frames_are_counted_drops(body: bytes) -> None:
    counted: list[str] = []
    machine = LinkRepair("auto", drop=counted.append)
    frame = extension_header(REPAIR) + body
    items = machine.receive(frame, 0.0)
    if parse(frame) is None:
        assert items == [] and counted == [drops.REPAIR_MALFORMED]
    assert all(item is None or isinstance(item, bytes) for item in items)


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="repair mode"):
        LinkRepair("sometimes")


def test_a_gap_an_acknowledgement_shows_is_sent_again_at_once() -> None:
    a, b = LinkRepair("arq"), LinkRepair("arq")
    frames = [a.send(b"%d" % i, i / 100)[0] for i in range(3)]
    b.receive(frames[0], 0.1)
    b.receive(frames[2], 0.1)  # 1 is missing: B acknowledges at once
    acks, _ = b.tick(0.1)
    assert len(acks) == 1
    a.receive(acks[0], 0.2)
    again, _ = a.tick(0.2)  # long before the RTO (1 s)
    assert [frame[EXTENSION_HEADER + 1] for frame in again] == [1]  # its sequence number
    assert b.receive(again[0], 0.3) == [b"1", b"2"]


def test_the_receiver_gives_up_at_once_what_the_sender_abandoned() -> None:
    a, b = LinkRepair("arq"), LinkRepair("arq")
    lost = a.send(b"lost", 0.0)
    a.sender.abandon(0)  # as when its retransmission found the link's queue full
    assert lost and b.receive(a.send(b"next", 0.1)[0], 0.2) == [None, b"next"]
    assert b.stats["unrepaired"] == 1


def test_a_fec_group_holds_consecutive_frames_only() -> None:
    """`auto` stops coding while retransmission can work and starts again later: a frame that
    does not follow the open group's last closes that group, so the receiver's numbering of
    a group's blocks holds (it once rebuilt a garbage frame from a group with a gap)."""
    sender = FecSender(group_wait=1.0)
    sender.parity = GROUP
    assert sender.add(0, b"a", 0.0) == [] and sender.add(1, b"b", 0.0) == []
    parity = sender.add(5, b"c", 0.0)
    assert parity and {(p.first, p.k) for p in parity} == {(0, 2)}
    assert sender.first() == [5]


def test_a_frame_sent_again_gives_no_rtt_sample() -> None:
    """Karn: the acknowledgement may answer either copy; at 20% loss such samples, each a
    retransmission's wait too long, made the RTO seconds."""
    a, b = LinkRepair("arq"), LinkRepair("arq")
    a.send(b"lost", 0.0)
    again, _ = a.tick(1.0)  # the RTO (1 s until measured) fired
    assert len(again) == 1
    b.receive(again[0], 1.1)
    acks, _ = b.tick(1.1 + Settings().ack_delay)
    a.receive(acks[0], 1.3)
    assert a.sender.outstanding == 0 and a.rtt.srtt is None
    b.receive(a.send(b"next", 2.0)[0], 2.1)
    a.receive(b.tick(2.1 + Settings().ack_delay)[0][0], 2.3)
    assert a.rtt.srtt == pytest.approx(0.3)


def test_a_held_gap_is_acknowledged_again_each_rtt_until_it_fills() -> None:
    """The acknowledgement that shows a gap may be lost, and no later frame may come to
    prompt another (the TCP sender waits for what is held behind the gap)."""
    a, b = LinkRepair("arq"), LinkRepair("arq")
    frames = [a.send(b"%d" % i, 0.0)[0] for i in range(3)]
    b.receive(frames[0], 0.1)
    b.receive(frames[2], 0.1)  # 1 is missing
    assert len(b.tick(0.1)[0]) == 1  # at once
    rtt = Settings().rtt  # none measured yet
    assert b.tick(0.1 + rtt / 2)[0] == [] and len(b.tick(0.1 + rtt)[0]) == 1  # again
    assert b.receive(frames[1], 1.2) == [b"1", b"2"]
    b.tick(1.2 + Settings().ack_delay)  # the acknowledgement of the filled gap
    assert b.deadline() is None  # nothing more to say


def test_the_timer_starts_from_the_link_round_trip() -> None:
    """On the 1200 bit/s half-duplex radio a frame's round trip is about 4 s: a timer of 1 s
    sent every frame again before its acknowledgement could come (and, by Karn's rule, never
    measured an RTT)."""
    assert link_settings(None) == Settings()
    assert link_settings(0.27).rtt == Settings().rtt  # 9600 bit/s: 1 s already covers it
    assert link_settings(3.9).rtt == pytest.approx(7.8)
    assert LinkRepair("arq", link_settings(3.9)).rtt.rto == pytest.approx(7.8)


def test_the_measured_loss_is_the_mean_until_it_has_enough_frames() -> None:
    """A start from 0 weighted 1/128 per frame would ask for half the parity FEC needs for
    the first minute of a 10 packets/s stream."""
    a, b = LinkRepair("fec"), LinkRepair("fec")
    for seq in range(20):
        frame = a.send(b"%d" % seq, seq / 10)[0]
        if seq % 10 != 3:  # one in ten lost
            b.receive(frame, seq / 10)
    b.tick(20 / 10 + Settings().fec_hold)  # the losses resolved
    assert b.loss == pytest.approx(0.1, abs=0.02)


def test_fec_rebuilds_only_frames_of_their_own_group_after_the_numbers_wrap() -> None:
    """Frames of one size, 10% loss, the sequence numbers wrapping a dozen times: every frame
    delivered is one sent (a receiver that kept a frame past its cache once rebuilt garbage
    from it and a later group of the same number)."""
    sent = [b"%06d" % i * 8 for i in range(3000)]
    result = run("fec", sent, loss=0.1, seed=4)
    assert result.b.stats["repaired"] > 100
    assert set(result.delivered) <= set(sent)


def test_fec_parity_goes_into_idle_airtime_one_frame_at_a_time() -> None:
    """Telemetry: a 74-byte frame every 100 ms over 9600 bit/s, the peer reporting 10% loss.
    A parity frame goes only when the link has sent all it was given, and one at most between
    two data frames, as fast as parity is made: so most data frames wait behind none (the
    median delay stays plain's; each parity frame delays one data frame)."""
    def airtime(size: int) -> float:
        return size * 8 / 9600

    a = LinkRepair("fec", frame_time=airtime)
    a.peer_loss = 0.1
    free = 0.0  # when the link has sent what it was given
    waited = parity = 0  # data frames that found the link busy; parity frames sent
    for i in range(600):
        now = i / 10
        for frame in a.send(bytes(68), now):
            waited += free > now
            free = max(free, now) + airtime(len(frame))
        between = 0
        while (due := a.deadline()) is not None and due < (i + 1) / 10:
            for frame in a.tick(max(now, due))[0]:
                assert free <= max(now, due), "a parity frame behind another frame"
                free = max(free, due) + airtime(len(frame))
                between, parity = between + 1, parity + 1
            now = max(now, due)
        assert between <= 1
    made = redundancy(0.1, GROUP) / GROUP * 600
    assert made * 0.9 <= parity <= made * 1.1
    assert waited <= parity + 1 and waited < 0.4 * 600



def test_a_bulk_groups_parity_goes_with_the_frame_that_completes_it() -> None:
    """100 frames/s over 256 kbit/s: the parity goes out with the group's last data frame,
    not at a later tick (the endpoint ticks when its receive thread wakes: a frame lost early
    in the group fell a receiver's window behind before the parity came)."""
    a = LinkRepair("fec", frame_time=lambda size: size * 8 / 256_000)
    a.peer_loss = 0.2
    sent = [a.send(bytes(104), i / 100) for i in range(GROUP)]
    assert [len(frames) for frames in sent] == [1] * (GROUP - 1) + [1 + redundancy(0.2, GROUP)]


def test_over_a_link_without_figures_parity_goes_as_it_is_made() -> None:
    """A slow group (telemetry) over a link that does not say how long a frame keeps it busy:
    nothing to pace by, so its parity goes with the frame that completes it."""
    a = LinkRepair("fec")
    a.peer_loss = 0.1
    sent = [a.send(bytes(40), i / 10) for i in range(GROUP)]
    assert len(sent[-1]) == 1 + redundancy(0.1, GROUP)


@pytest.mark.parametrize("peer_loss", [0.0, 0.2])
def test_the_loss_report_comes_soon_while_the_parity_heard_falls_short(
        peer_loss: float) -> None:
    """A fifth of the frames lost: a receiver that hears no parity (its report was lost, or
    none went yet) reports after REPORT_SOON; one that hears enough, after report_every."""
    a, b = LinkRepair("fec"), LinkRepair("fec")
    a.peer_loss = peer_loss
    for i in range(100):
        for frame in a.send(bytes(40), 0.0):
            if frame[EXTENSION_HEADER] != DATA or i % 5 != 4:
                b.receive(frame, 0.0)
    assert 0.15 < b.loss < 0.25
    assert b.deadline() == (REPORT_SOON if peer_loss == 0 else Settings().report_every)

HALF_DUPLEX = link_settings(3.9, half_duplex=True)  # the 1200 bit/s radio's round trip


def test_over_half_duplex_an_acknowledgement_waits_for_the_turn_and_says_it_all() -> None:
    """While the peer's transmission goes on the link is not ready: an acknowledgement
    queued in the radio then would go out stale (and one per frame); it waits, and says
    what the whole transmission brought."""
    a, b = LinkRepair("arq", HALF_DUPLEX), LinkRepair("arq", HALF_DUPLEX)
    frames = [a.send(b"%d" % i, 0.0)[0] for i in range(5)]
    for i, frame in enumerate(frames):
        now = 1.0 + 2 * i
        if i != 1:  # lost: a gap, acknowledged at once when the link is ready
            b.receive(frame, now)
        assert b.tick(now, ready=False)[0] == []
        due = b.deadline(ready=False)
        assert due is None or due > now  # nothing due while it waits: no busy loop
    assert b.ack_waiting
    acks, _ = b.tick(10.0, ready=True)
    assert len(acks) == 1
    parsed = parse(acks[0])
    assert parsed is not None and parsed[0] == ACK and parsed[4] is not None
    assert [parsed[4].covers(seq) for seq in range(5)] == [True, False, True, True, True]
    assert b.tick(10.0, ready=True)[0] == []  # the next one an RTT on (the gap is held)


def test_over_half_duplex_a_frame_an_acknowledgement_after_the_turn_misses_is_sent_again() -> None:
    """A burst's last frame, or a retransmission, has no later frame to show its loss: an
    acknowledgement that answers the turn after it (it comes most of the least RTT later)
    shows it lost, and it goes again at once, not after an RTO of many seconds; a frame sent
    while the acknowledgement was on its way is not."""
    a, b = LinkRepair("arq", HALF_DUPLEX), LinkRepair("arq", HALF_DUPLEX)
    b.receive(a.send(b"first", 0.0)[0], 2.0)
    a.receive(b.tick(2.0 + HALF_DUPLEX.ack_delay)[0][0], 4.0)  # the least RTT: 4 s
    b.receive(a.send(b"burst", 10.0)[0], 12.0)
    a.send(b"last", 10.1)  # lost
    acks, _ = b.tick(12.0 + HALF_DUPLEX.ack_delay)
    a.send(b"meanwhile", 13.5)  # offered while the acknowledgement is on the air
    a.receive(acks[0], 14.0)
    again, _ = a.tick(14.0)
    assert [frame[EXTENSION_HEADER + 1] for frame in again] == [2]  # "last" alone
    assert parse(again[0]) is not None and b.receive(again[0], 16.0) == [b"last"]
    plain = LinkRepair("arq", link_settings(3.9))  # full duplex: the timer's business
    plain.receive(LinkRepair("arq").send(b"x", 0.0)[0], 0.0)
    assert plain.sender.half_duplex is False


def test_over_half_duplex_the_timer_waits_until_the_link_is_quiet() -> None:
    """A burst of frames keeps the 1200 bit/s radio for many seconds, and the peer cannot
    answer before it ends: a timer run from each frame's sending sent most of the burst again
    (more airtime on copies than on data). It runs from when the link has sent all it was
    given (its figures) and last heard the peer (not ready)."""
    def airtime(size: int) -> float:
        return 1.85  # a frame of the radio, whatever its size

    a = LinkRepair("arq", HALF_DUPLEX, frame_time=airtime)
    for i in range(5):
        a.send(b"%d" % i, 0.0)  # on the air until 9.25 s
    rto = a.rtt.rto
    assert a.tick(rto)[0] == [] and a.tick(9.25 + rto - 0.1)[0] == []
    assert a.deadline() == pytest.approx(9.25 + rto)
    a.tick(10.0, ready=False)  # the peer's transmission: the timer starts again after it
    assert a.tick(9.25 + rto)[0] == [] and len(a.tick(10.0 + rto)[0]) == 5
    full = LinkRepair("arq", link_settings(3.9), frame_time=airtime)
    full.send(b"0", 0.0)
    assert len(full.tick(rto)[0]) == 1  # full duplex: from the frame's sending
