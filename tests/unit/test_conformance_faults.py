"""The conformance suite's words for what it saw (linkbridge/plugin/faults.py): corruption,
the pattern of lost packets, the measured summary line."""

from __future__ import annotations

from linkbridge.plugin.faults import (
    Measured,
    corruption,
    describe_loss,
    index_of,
    numbered,
    ordinal,
    summary_line,
)

SENT = [numbered(index, bytes(range(10))) for index in range(50)]


def test_ordinals() -> None:
    assert [ordinal(n) for n in (1, 2, 3, 4, 7, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "7th", "11th", "12th", "13th", "21st", "22nd", "101st",
        "111th"]


def test_a_packet_is_known_only_as_sent() -> None:
    assert index_of(SENT[7], SENT) == 7
    assert index_of(SENT[7][:-1] + b"\xff", SENT) is None
    assert index_of(numbered(50, b""), SENT) is None


def test_corruption_names_the_first_changed_packet() -> None:
    flipped = SENT[12][:6] + bytes([SENT[12][6] ^ 1]) + SENT[12][7:]
    assert corruption(SENT, SENT) == (0, "")
    assert corruption(SENT, [SENT[0], flipped, SENT[13][:-2]]) == (
        2, "packet 12: 1 of 14 bytes changed, the first at offset 6")
    assert corruption(SENT, [SENT[3][:-2]]) == (1, "packet 3: 12 bytes instead of 14")
    assert corruption(SENT, [numbered(999, b"x")]) == (
        1, "a packet of 5 bytes with no packet number sent")


def test_regular_loss_is_named_as_every_nth_packet() -> None:
    lost = range(6, 2000, 7)
    assert describe_loss(lost, 2000) == "every 7th packet lost (285 of 2000: packets 6, 13, " \
                                        "20, ...)"
    assert describe_loss([*range(1, 100, 2), 52], 100).startswith("every 2nd packet lost")


def test_other_loss_is_named_by_its_runs() -> None:
    assert describe_loss([], 10) == ""
    assert describe_loss([4], 10) == "1 of 10 lost (packets 4)"
    assert describe_loss(range(100, 228), 2000) == "packets 100-227 lost (128 in a row, of 2000)"
    assert describe_loss([1, 2, 5, 9, 10, 40], 50) == "6 of 50 lost (packets 1-2, 5, 9-10, ...)"


def test_the_summary_is_one_line_of_what_was_measured() -> None:
    line = summary_line("fifo", [8, 1400, 700],
                        [Measured("A -> B", 2, 2, 1_000_000, 1.0),
                         Measured("B -> A", 1, 0, 0, 0.0)],
                        {"queue_full": 3, "mtu": 0}, 0.0125)
    assert line == ("fifo: 3 packets of 8-1400 bytes: A -> B 2/2 delivered in 1.00 s "
                    "(8.00 Mbit/s), B -> A 0/1 delivered in 0.00 s (-); drops: queue_full 3; "
                    "longest send() 12.5 ms")
