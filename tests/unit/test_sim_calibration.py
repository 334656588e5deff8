"""Calibration of the half-duplex radio against two real Dire Wolf 1.6 soft modems (issue 32):
AFSK 1200 baud, AX.25 UI frames, TXDELAY 300 ms, TXTAIL 100 ms, PERSIST 63, SLOTTIME 100 ms,
MTU 256 measured a ping RTT of 3.08 s and a 10,000-byte TCP transfer at 601 bit/s, with 1
collision. The pure channel, on a simulated clock, with the same settings and the mechanisms
of a TNC (one key-up for all queued frames, a slot before the first persistence draw, AX.25
framing computed from the bytes) must come within 10% of both, with at most 5 collisions per
100 frames. No constant here is fitted to the figures: each is a Dire Wolf default, a protocol
size (IP, TCP, AX.25) or Linux's TCP default (initial window, RFC 6298's timer)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import pytest
from linkbridge_sim.channel import Channel, Delivery
from linkbridge_sim.radio import RadioSettings

from linkbridge.wire.arq import smoothed

REAL_RTT, REAL_GOODPUT = 3.08, 601.0  # the real modems (issue 32)

# Dire Wolf 1.6's defaults; it waits a slot before each persistence draw and sends every frame
# it holds after one TXDELAY (burst: more than any window here queues).
DIRE_WOLF = RadioSettings(rate=1200.0, txdelay=0.300, txtail=0.100, persist=63, slottime=0.100,
                          slotwait=True, burst=64, framing="ax25")

PING = 84  # ICMP echo with 56 bytes of data, as ping and the lab send it
MTU = 256
TCP_HEADER = 52  # IPv4 20 + TCP 20 + timestamps 12 (Linux's default)
SYN = 60  # IPv4 20 + TCP 20 + MSS, SACK permitted, timestamps, window scale
SEGMENT = MTU - TCP_HEADER  # data bytes per full segment: 204
INITIAL_WINDOW = 10  # Linux's initial congestion window (RFC 6928)
TRANSFER = 10_000


def frame(kind: bytes, number: int, size: int, cumulative: int = 0) -> bytes:
    """A `size`-byte frame that says what it is (the rest zeros, as headers mostly are)."""
    return kind + number.to_bytes(4, "big") + cumulative.to_bytes(4, "big") + bytes(size - 9)


def dire_wolf_channel(seed: int, radio: RadioSettings = DIRE_WOLF) -> Channel:
    channel = Channel(random.Random(seed))
    for name in ("a", "b"):
        channel.join(name, radio.radio())
    return channel


def mean_ping_rtt(seed: int, pings: int,
                  radio: RadioSettings = DIRE_WOLF) -> tuple[float, Channel]:
    """`pings` echo requests each way, 20 s apart; B (or A) answers each as it arrives."""
    channel = dire_wolf_channel(seed, radio)
    sent: dict[int, float] = {}
    rtts = []
    for index in range(2 * pings):
        start = 20.0 * index
        asker, answerer = ("a", "b") if index % 2 == 0 else ("b", "a")
        channel.offer(asker, frame(b"P", index, PING), start)
        sent[index] = start
        while (due := channel.next_event()) is not None and due < start + 20.0:
            for delivery in channel.advance(due):
                number = int.from_bytes(delivery.frame[1:5], "big")
                if delivery.frame[:1] == b"P" and delivery.station == answerer:
                    channel.offer(answerer, frame(b"R", number, PING), delivery.at)
                elif delivery.frame[:1] == b"R" and delivery.station == asker:
                    rtts.append(delivery.at - sent[number])
    assert len(rtts) == 2 * pings  # none lost: no competing traffic
    return sum(rtts) / len(rtts), channel


@dataclass
class BulkTcp:
    """A TCP-like bulk transfer from A to B over the channel: SYN, SYN-ACK, then the data in
    MSS-sized segments, slow start from Linux's initial window, one ACK per segment (B never
    delays one); an ACK names the segment it answers and acknowledges all before the first
    one missing. The first missing segment is sent again (once) when an ACK of a later one
    shows it is missing, and the window halves.

    The retransmission timer: with `linux_timer`, RFC 6298's as Linux runs it (1 s at first,
    200 ms at least, binary backoff up to 60 s, no RTT sample from a retransmitted segment,
    3 s once data starts after a retransmitted SYN); on expiry it sends the SYN or the oldest
    unacknowledged segment again, and nothing more (what F-RTO leaves of a spurious timeout).
    B answers every SYN, and A every SYN-ACK after the first with an ACK. Without it, a
    fixed minute: only lost ACKs or a lost last segment ever wait for it."""

    channel: Channel
    linux_timer: bool = False
    segments: int = math.ceil(TRANSFER / SEGMENT)
    cwnd: int = INITIAL_WINDOW
    sent: dict[int, float] = field(default_factory=dict)  # segment -> first sent
    acked: set[int] = field(default_factory=set)
    received: set[int] = field(default_factory=set)  # by B
    resent: set[int] = field(default_factory=set)
    next_segment: int = 0
    rto: float = 60.0
    srtt: float | None = None
    rttvar: float = 0.0
    deadline: float | None = None
    syns: int = 0
    established: bool = False
    done_at: float | None = None

    def __post_init__(self) -> None:
        if self.linux_timer:
            self.rto = 1.0

    def size(self, number: int) -> int:
        data = min(SEGMENT, TRANSFER - number * SEGMENT)
        return TCP_HEADER + data

    def send_window(self, now: float) -> None:
        in_flight = len(self.sent.keys() - self.acked)
        while self.next_segment < self.segments and in_flight < self.cwnd:
            self.send(self.next_segment, now)
            self.next_segment += 1
            in_flight += 1

    def send(self, number: int, now: float) -> None:
        if number in self.sent:
            self.resent.add(number)
        self.sent.setdefault(number, now)
        self.channel.offer("a", frame(b"D", number, self.size(number)), now)
        if self.deadline is None:
            self.deadline = now + self.rto

    def send_syn(self, now: float) -> None:
        self.syns += 1
        self.channel.offer("a", frame(b"S", 0, SYN), now)
        self.deadline = now + self.rto

    def on_delivery(self, delivery: Delivery) -> None:
        kind, number = delivery.frame[:1], int.from_bytes(delivery.frame[1:5], "big")
        now = delivery.at
        if kind == b"S":  # B answers every SYN
            self.channel.offer("b", frame(b"s", 0, SYN), now)
        elif kind == b"s" and self.established:  # a duplicate SYN-ACK
            self.channel.offer("a", frame(b"A", 0, TCP_HEADER), now)
        elif kind == b"s":  # A completes the handshake and starts sending
            self.established, self.deadline = True, None
            if self.linux_timer and self.syns > 1:
                self.rto = 3.0  # RFC 6298 5.7
            self.channel.offer("a", frame(b"A", 0, TCP_HEADER), now)
            self.send_window(now)
        elif kind == b"D":
            self.received.add(number)
            if len(self.received) == self.segments and self.done_at is None:
                self.done_at = now
            cumulative = next(n for n in range(self.segments + 1) if n not in self.received)
            self.channel.offer("b", frame(b"K", number, TCP_HEADER, cumulative), now)
        elif kind == b"K" and number not in self.acked:
            self.on_ack(number, int.from_bytes(delivery.frame[5:9], "big"), now)

    def on_ack(self, number: int, first_missing: int, now: float) -> None:
        if self.linux_timer and number not in self.resent:
            self.sample(now - self.sent[number])
        self.acked |= {number, *range(first_missing)}
        self.cwnd += 1  # slow start: one more segment per ACK
        self.deadline = now + self.rto if self.sent.keys() - self.acked else None
        if first_missing < number and first_missing not in self.resent:
            self.cwnd = max(2, self.cwnd // 2)  # a later one arrived, this one did not: lost
            self.send(first_missing, now)
        self.send_window(now)

    def sample(self, rtt: float) -> None:
        """RFC 6298 2.2-2.4 with Linux's 200 ms floor."""
        srtt, self.rttvar = smoothed(self.srtt, self.rttvar, rtt)
        self.srtt = srtt
        self.rto = min(60.0, max(0.2, srtt + 4 * self.rttvar))

    def expire(self, now: float) -> None:
        if self.linux_timer:
            self.rto = min(60.0, 2 * self.rto)
        if not self.established:
            self.send_syn(now)
            return
        self.deadline = None
        self.send(min(self.sent.keys() - self.acked), now)

    def run(self) -> float:
        """Goodput in bit/s: the transfer's bytes over the time from the SYN to the last
        segment's arrival (as the lab measures it: from connecting to the last byte)."""
        self.send_syn(0.0)
        while self.done_at is None:
            due, deadline = self.channel.next_event(), self.deadline
            assert due is not None or deadline is not None, "the transfer is stuck"
            if deadline is not None and (due is None or deadline < due):
                self.expire(deadline)
                continue
            assert due is not None
            for delivery in self.channel.advance(due):
                self.on_delivery(delivery)
        return TRANSFER * 8 / self.done_at


def collisions_per_frame(channel: Channel) -> float:
    stats = [channel.stats(name) for name in ("a", "b")]
    return sum(s.collisions for s in stats) / sum(s.sent for s in stats)


def test_the_ping_rtt_comes_within_10_percent_of_the_real_modems() -> None:
    """Per direction: a slot, then (1 - p) / p more on average (p = 64/256), TXDELAY, 832 bits
    of AX.25 (0.693 s), and the answer waits for the request's tail: 2.89 s analytic."""
    airtime = DIRE_WOLF.frame_airtime(frame(b"P", 0, PING))
    p = 64 / 256
    analytic = 2 * (0.1 / p + 0.3 + airtime) + 0.1
    rtt, channel = mean_ping_rtt(seed=1, pings=150)
    assert rtt == pytest.approx(analytic, rel=0.04)  # the model does what it says
    assert rtt == pytest.approx(REAL_RTT, rel=0.10), rtt
    assert collisions_per_frame(channel) == 0.0


def bulk_goodputs(linux_timer: bool, seeds: int) -> list[tuple[float, float]]:
    """Goodput and collisions per frame of the TCP-like transfer, one run per seed."""
    runs = []
    for seed in range(1, seeds + 1):
        transfer = BulkTcp(dire_wolf_channel(seed), linux_timer=linux_timer)
        runs.append((transfer.run(), collisions_per_frame(transfer.channel)))
    return runs


def test_without_tcps_timer_the_transfer_is_the_ideal_the_real_one_reached_85_percent_of() -> None:
    """Handshake, then bursts of 10, 20 and 20 segments each answered by a burst of ACKs: the
    channel alone allows 693-722 bit/s (20 seeds), with no collision. The issue put the real
    601 bit/s at about 85% of what AX.25 framing and one ACK per segment allow (707 bit/s):
    the model without TCP's retransmission timer is that ideal, within 2%."""
    for goodput, collisions in bulk_goodputs(linux_timer=False, seeds=3):
        assert goodput == pytest.approx(REAL_GOODPUT / 0.85, rel=0.02)
        assert collisions == 0.0


def test_bulk_tcp_goodput_comes_within_10_percent_of_the_real_modems() -> None:
    """With Linux's retransmission timer the 1 s initial timeout fires before the SYN's round
    trip (2 or 3 SYNs, as the real modems saw: connect 3.4 s) and before the first window's
    ACKs (its first segment goes again, queued in the TNC behind the rest): 624-671 bit/s over
    20 seeds, 656 on average, +9.1% from the real 601 bit/s; at most 2.2 collisions per 100
    frames."""
    runs = bulk_goodputs(linux_timer=True, seeds=20)
    mean = sum(goodput for goodput, _ in runs) / len(runs)
    assert mean == pytest.approx(REAL_GOODPUT, rel=0.10), mean
    assert max(collisions for _, collisions in runs) <= 0.05


def test_without_the_tnc_mechanisms_the_model_misses_the_real_figures() -> None:
    """Yesterday's model (no slot wait, framing ignored: 84 bytes of data on the air) gave
    2.36 s in the issue's lab; its mean ping RTT is 2 (0.3 + 0.3 + 0.56) + 0.1 = 2.42 s,
    more than 20% below the real modems': the mechanisms, not a constant, make the figure."""
    old = RadioSettings(rate=1200.0, txdelay=0.300, txtail=0.100, persist=63, slottime=0.100)
    rtt, _ = mean_ping_rtt(seed=1, pings=150, radio=old)
    assert rtt == pytest.approx(2.42, rel=0.04)
    assert rtt < 0.8 * REAL_RTT
