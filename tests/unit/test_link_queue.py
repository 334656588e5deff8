"""The link-aware queue's decisions (wire/queue.py): retransmission drop, ACK filter, priority,
fairness and limits, on IPv4 and IPv6 TCP, with the time given."""

from __future__ import annotations

import pytest

from linkbridge.wire.drops import QUEUE_ACK_FILTERED, QUEUE_OVERFLOW, QUEUE_RETRANSMIT
from linkbridge.wire.queue import ACK, FIN, QUANTUM, SYN, LinkQueue, seq_after
from tests.helpers.ip_packets import echo, tcp, timestamps, udp

RTT = 4.0
VERSIONS = pytest.mark.parametrize("version", [4, 6])
BULK = b"d" * 200
PSH = 0x08
SACK_BLOCK = b"\x01\x01\x05\x0a" + bytes(8)  # NOP NOP SACK with one block


def drain(queue: LinkQueue, now: float = 0.0) -> list[bytes]:
    out = []
    while (packet := queue.pop(now)) is not None:
        out.append(packet)
    return out


def test_seq_after_wraps() -> None:
    assert seq_after(1, 0) and seq_after(5, 0xFFFFFFF0) and not seq_after(0xFFFFFFF0, 5)
    assert not seq_after(7, 7)


@VERSIONS
def test_retransmission_of_a_queued_segment_is_dropped(version: int) -> None:
    queue = LinkQueue(RTT)
    segment = tcp(version, seq=100, flags=ACK | PSH, payload=BULK)
    assert queue.push(segment, 0.0) == []
    again = tcp(version, seq=100, ack=2500, flags=ACK | PSH, payload=BULK, window=9)
    assert queue.push(again, 1.0) == [QUEUE_RETRANSMIT]
    assert drain(queue) == [segment]


@VERSIONS
def test_retransmitted_syn_dropped_within_a_round_trip_then_let_through(version: int) -> None:
    queue = LinkQueue(RTT)
    syn = tcp(version, seq=7, ack=0, flags=SYN)
    queue.push(syn, 0.0)
    assert queue.pop(0.5) == syn
    assert queue.push(syn, 0.5 + RTT) == [QUEUE_RETRANSMIT]  # within one round trip of sending
    assert queue.pop(RTT) is None
    assert queue.push(syn, 0.6 + RTT) == []  # later: the original was probably lost
    assert drain(queue) == [syn]


def test_only_identical_segments_are_retransmissions() -> None:
    queue = LinkQueue(RTT)
    queue.push(tcp(seq=100, payload=BULK), 0.0)
    others = [tcp(seq=300, payload=BULK), tcp(seq=100, payload=b"e" * 200),
              tcp(seq=100, flags=ACK | FIN, payload=BULK), tcp(seq=100, payload=BULK, sport=1),
              tcp(6, seq=100, payload=BULK)]
    for packet in others:
        assert queue.push(packet, 0.0) == []
    assert queue.packets == 1 + len(others)


def test_duplicate_acks_and_other_protocols_are_never_retransmissions() -> None:
    queue = LinkQueue(RTT)
    dup = tcp(seq=1, ack=500)
    ping = echo(seq=3)
    for packet in (dup, dup, dup, ping, ping, udp(), udp()):
        assert queue.push(packet, 0.0) == []
    assert len(drain(queue)) == 7


@VERSIONS
def test_ack_filter_drops_a_superseded_pure_ack(version: int) -> None:
    queue = LinkQueue(RTT)
    old = tcp(version, ack=1000, options=timestamps(1, 2))
    new = tcp(version, ack=1200, options=timestamps(3, 4))
    assert queue.push(old, 0.0) == []
    assert queue.push(new, 0.0) == [QUEUE_ACK_FILTERED]
    assert drain(queue) == [new]


def test_ack_filter_across_the_sequence_wrap() -> None:
    queue = LinkQueue(RTT)
    queue.push(tcp(ack=0xFFFFFF00), 0.0)
    assert queue.push(tcp(ack=0x10), 0.0) == [QUEUE_ACK_FILTERED]


def test_a_data_segment_acknowledging_more_supersedes_a_pure_ack() -> None:
    queue = LinkQueue(RTT)
    queue.push(tcp(ack=1000), 0.0)
    data = tcp(seq=5, ack=1100, flags=ACK | PSH, payload=BULK)
    assert queue.push(data, 0.0) == [QUEUE_ACK_FILTERED]
    assert drain(queue) == [data]


def test_data_acknowledging_as_much_supersedes_the_ack_that_completes_a_handshake() -> None:
    queue = LinkQueue(RTT)
    queue.push(tcp(seq=1, ack=1000), 0.0)  # the ACK of a SYN-ACK, then the first data
    data = tcp(seq=1, ack=1000, flags=ACK | PSH, payload=BULK)
    assert queue.push(data, 0.0) == [QUEUE_ACK_FILTERED]
    assert drain(queue) == [data]


def test_data_acknowledging_as_much_keeps_a_duplicate_ack() -> None:
    queue = LinkQueue(RTT)
    queue.push(tcp(ack=1000), 0.0)
    assert queue.pop(0.0) is not None
    dup = tcp(ack=1000)  # fast retransmit counts it
    queue.push(dup, 0.0)
    data = tcp(seq=5, ack=1000, flags=ACK | PSH, payload=BULK)
    assert queue.push(data, 0.0) == []
    assert drain(queue) == [dup, data]


@pytest.mark.parametrize("old", [
    tcp(ack=1000, payload=b"x"),  # carries data
    tcp(ack=1000, options=SACK_BLOCK),  # carries SACK blocks
    tcp(ack=1000, flags=ACK | FIN),  # another flag
    tcp(ack=1000, flags=ACK | PSH),
    tcp(ack=1000, flags=ACK | 0x40),  # ECE
    tcp(ack=1200),  # not acknowledged past: equal
    tcp(ack=1300),  # acknowledges more than the new one
    tcp(ack=1000, sport=1),  # another flow
    tcp(6, ack=1000),
], ids=["data", "sack", "fin", "psh", "ece", "duplicate", "newer", "other-port", "other-ip"])
def test_ack_filter_keeps_what_is_not_a_superseded_pure_ack(old: bytes) -> None:
    queue = LinkQueue(RTT)
    queue.push(old, 0.0)
    assert queue.push(tcp(ack=1200), 0.0) == []
    assert queue.packets == 2


def test_ack_filter_ignores_an_ack_already_sent() -> None:
    queue = LinkQueue(RTT)
    queue.push(tcp(ack=1000), 0.0)
    assert queue.pop(0.0) is not None
    assert queue.push(tcp(ack=1200), 0.0) == []
    assert queue.packets == 1


def test_small_packets_go_before_bulk() -> None:
    queue = LinkQueue(RTT)
    bulk = [tcp(seq=100 + 200 * i, payload=BULK) for i in range(3)]
    for packet in bulk:
        queue.push(packet, 0.0)
    ping = echo(payload=b"p" * 56)
    ack = tcp(seq=9, ack=77, sport=22, dport=40000)
    queue.push(ping, 0.0)
    queue.push(ack, 0.0)
    assert drain(queue) == [ping, ack, *bulk]


def test_a_small_segment_stays_behind_its_flows_bulk() -> None:
    queue = LinkQueue(RTT)
    big = tcp(seq=100, payload=BULK)
    tail = tcp(seq=300, payload=b"t" * 10)
    queue.push(big, 0.0)
    queue.push(tail, 0.0)
    assert drain(queue) == [big, tail]  # no reordering within the flow


def test_bulk_flows_share_in_turn() -> None:
    queue = LinkQueue(RTT)
    one = [tcp(seq=100 + 200 * i, payload=BULK, sport=1) for i in range(4)]
    two = [tcp(seq=100 + 200 * i, payload=BULK, sport=2) for i in range(4)]
    for packet in one + two:
        queue.push(packet, 0.0)
    order = drain(queue)
    assert sorted(order) == sorted(one + two)
    firsts = [1 if packet in one else 2 for packet in order]
    assert all(abs(firsts[:n].count(1) - firsts[:n].count(2)) <= 1 for n in range(1, 9))


def test_fair_in_bytes_not_packets() -> None:
    queue = LinkQueue(RTT, limit_packets=100)
    large = [tcp(seq=1 + 1000 * i, payload=b"L" * 1000, sport=1) for i in range(3)]
    small = [tcp(seq=1 + 250 * i, payload=b"s" * 250, sport=2) for i in range(12)]
    for packet in large + small:
        queue.push(packet, 0.0)
    order = drain(queue)
    last = max(order.index(large[-1]), order.index(small[-1]))
    for n in range(1, min(order.index(large[-1]), order.index(small[-1]))):
        sent_large = sum(len(packet) for packet in order[:n] if packet in large)
        sent_small = sum(len(packet) for packet in order[:n] if packet in small)
        assert abs(sent_large - sent_small) <= len(large[0]) + QUANTUM
    assert last == len(order) - 1


def test_packet_limit_drops_the_oldest_of_the_largest_flow() -> None:
    queue = LinkQueue(RTT, limit_packets=4)
    fat = [tcp(seq=100 + 200 * i, payload=BULK, sport=1) for i in range(3)]
    thin = tcp(seq=100, payload=BULK, sport=2)
    ping = echo()
    for packet in (*fat, thin):
        assert queue.push(packet, 0.0) == []
    assert queue.push(ping, 0.0) == [QUEUE_OVERFLOW]
    assert queue.packets == 4
    assert drain(queue) == [ping, fat[1], thin, fat[2]]


def test_byte_limit() -> None:
    queue = LinkQueue(RTT, limit_bytes=1000)
    drops = [reason for i in range(10)
             for reason in queue.push(tcp(seq=1 + 200 * i, payload=BULK), 0.0)]
    assert queue.bytes <= 1000 and drops == [QUEUE_OVERFLOW] * (10 - queue.packets)
    assert queue.bytes == sum(len(packet) for packet in drain(queue))


def test_interactive_dropped_only_when_no_bulk_waits() -> None:
    queue = LinkQueue(RTT, limit_packets=2)
    pings = [echo(seq=i) for i in range(3)]
    drops = [reason for ping in pings for reason in queue.push(ping, 0.0)]
    assert drops == [QUEUE_OVERFLOW]
    assert drain(queue) == pings[1:]


def test_a_dropped_segment_may_be_sent_again() -> None:
    queue = LinkQueue(RTT, limit_packets=1)
    first = tcp(seq=100, payload=BULK)
    queue.push(first, 0.0)
    queue.push(tcp(seq=300, payload=BULK, sport=3), 0.0)  # overflow drops `first`
    assert queue.push(first, 0.0) == [QUEUE_OVERFLOW]  # not a retransmission of a queued one
    assert queue.packets == 1


def test_other_frames_are_queued_as_one_flow() -> None:
    queue = LinkQueue(RTT)
    frames = [b"\x00", b"\x20\x04" + bytes(40), bytes([0x45]) + bytes(30)]
    for frame in frames:
        assert queue.push(frame, 0.0) == []
    assert drain(queue) == frames


def test_counts_follow_pushes_and_pops() -> None:
    queue = LinkQueue(RTT)
    packets = [tcp(seq=1 + 200 * i, payload=BULK) for i in range(3)]
    for packet in packets:
        queue.push(packet, 0.0)
    assert (queue.packets, queue.bytes) == (3, sum(map(len, packets)))
    queue.pop(0.0)
    assert (queue.packets, queue.bytes) == (2, sum(map(len, packets[1:])))


def test_limits_must_hold_a_packet() -> None:
    with pytest.raises(ValueError):
        LinkQueue(RTT, limit_packets=0)
