"""What the lab derives from what a link says it is configured to do: how long it waits for an
echo reply, how far apart it sends pings, how big its TCP transfer is, and how it counts loss;
and how its report words late replies and a transfer cut short."""

from __future__ import annotations

import pytest

from linkbridge.errors import ConfigError
from linkbridge.lab.compare import (
    DEFAULT_TRANSFER,
    MIN_PING_TIMEOUT,
    PING_TIMEOUT,
    comparison_lines,
    ping_spacing,
    ping_timeout,
    transfer_note,
    transfer_size,
)
from linkbridge.lab.layers import queue_drops
from linkbridge.lab.options import LabOptions
from linkbridge.lab.probes import PingResult, TransferResult
from linkbridge.lab.report import ping_text, traffic_problem, transfer_text
from linkbridge.ops.status_data import SideStatus
from linkbridge.plugin.lab import LabDirection


def test_a_link_of_unknown_figures_gets_the_full_timeout() -> None:
    assert ping_timeout(None, 84) == PING_TIMEOUT
    assert ping_spacing(None, 84) == 0.0


def test_a_fast_lossy_link_waits_the_minimum_not_a_second_per_loss() -> None:
    lossy = LabDirection(loss=0.05)
    assert ping_timeout((lossy, lossy), 84) == MIN_PING_TIMEOUT


def test_a_slow_link_waits_three_round_trips_and_margin_however_long() -> None:
    radio = LabDirection(delay=0.04, rate=9600)  # 84 bytes: 40 ms + 70 ms each way
    assert ping_timeout((radio, radio), 84) == pytest.approx(3 * 0.22 + 0.2)
    crawl = LabDirection(delay=0.6)  # `sim:?delay=600ms`: a 1.2 s round trip, once capped at 1 s
    assert ping_timeout((crawl, crawl), 84) == pytest.approx(3 * 1.2 + 0.2)


def test_pings_are_a_round_trip_apart_only_on_a_half_duplex_link() -> None:
    def airtime(size: int) -> float:
        return size / 100

    radio = LabDirection(delay=0.05, airtime=airtime, half_duplex=True)
    assert ping_spacing((radio, radio), 84) == pytest.approx(2 * (0.05 + 0.84))
    pipe = LabDirection(delay=0.05, airtime=airtime)
    assert ping_spacing((pipe, pipe), 84) == 0.0


def test_an_explicit_transfer_size_is_honoured_and_the_default_is_sized_to_a_slow_link() -> None:
    slow = LabDirection(rate=9600)
    assert transfer_size((slow, slow), 100_000) == 100_000
    assert transfer_size((slow, slow), None) == 4800  # about 4 s at 9600 bit/s
    assert transfer_size(None, None) == DEFAULT_TRANSFER
    assert "sized to the link" in transfer_note((slow, slow), 4800, None)
    explicit = transfer_note((slow, slow), 100_000, 100_000)
    assert "about 83.3 s" in explicit and "sized" not in explicit


def test_loss_rows_set_decompression_drops_apart_from_link_loss() -> None:
    figures = (LabDirection(loss=0.05), LabDirection(loss=0.05))
    after = ({"tx_packets": 200, "rx_packets": 90}, {"tx_packets": 100, "rx_packets": 170})
    lines = comparison_lines(figures, PingResult(), 84, None, ({}, {}), after,
                             ({"compress_tossed": 20}, {}))
    ab = next(line for line in lines if "loss A -> B" in line)
    assert "5.00%" in ab and "10 of 200 packets" in ab and "compress_tossed=20" in ab
    assert "5.00%" in ab.split("5.00%", 1)[1]  # measured: 10 of 200, not 30 of 200
    ba = next(line for line in lines if "loss B -> A" in line)
    assert "10 of 100 packets" in ba and "decompression" not in ba
    assert not any(line.lstrip().startswith("rate") for line in lines)  # no transfer


def test_loss_rows_set_the_senders_full_queue_apart_from_link_loss() -> None:
    figures = (LabDirection(delay=0.6), LabDirection(delay=0.6))
    after = ({"tx_packets": 1000, "rx_packets": 100}, {"tx_packets": 100, "rx_packets": 800})
    lines = comparison_lines(figures, PingResult(), 84, None, ({}, {}), after, ({}, {}),
                             ({"sim_queue_full": 200}, {}))
    ab = next(line for line in lines if "loss A -> B" in line)
    assert "0.00%" in ab.split("0.00%", 1)[1] and "0 of 1000 packets" in ab
    assert "200 more dropped by the sender's queues (sim_queue_full=200)" in ab


def test_late_replies_are_received_not_lost() -> None:
    result = PingResult(sent=4, rtts_ms=[1800.0, 1790.0, 6100.0, 1795.0], late=1, wait=5.55)
    text = ping_text(result)
    assert "4 received (1 late: after the 5.55 s wait), 0.0% loss" in text


def test_a_transfer_cut_short_says_what_arrived_never_corrupted_at_0_bit_s() -> None:
    cut = TransferResult(size=100_000, sent_bytes=40_000, received_bytes=3_000, seconds=2.5,
                         arrived_intact=True, stopped="stopped at the 2.5 s limit",
                         limited=True)
    text = transfer_text(cut)
    assert text.startswith("INCOMPLETE: 3000 of 100000 bytes arrived, 40000 handed to TCP in "
                           "2.50 s = 9.60 kbit/s, stopped at the 2.5 s limit")
    assert text.endswith("what arrived is intact") and cut.ok and not cut.intact
    stalled = TransferResult(100_000, 100_000, 0, 60.0, True, "no progress for 60 s")
    assert "INCOMPLETE: 0 of 100000" in transfer_text(stalled) and not stalled.ok
    whole = TransferResult(2000, 2000, 2000, 1.0, True)
    assert transfer_text(whole) == "2000 of 2000 bytes in 1.00 s = 16.0 kbit/s, content intact"
    assert whole.ok and whole.intact


@pytest.mark.parametrize(("options", "words"), [
    (LabOptions(cipher="chacha20-poly1305"), "--cipher chacha20-poly1305 needs --encrypt"),
    (LabOptions(compress="vj", encrypt=True), "--compress vj cannot share a link with encr"),
    (LabOptions(offload="on", compress="auto"), "--offload on cannot run with --compress"),
    (LabOptions(transfer_bytes=-1), "--bytes -1"),
])
def test_options_that_cannot_go_together_are_refused_before_any_set_up(
        options: LabOptions, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        options.check()


def test_tunnel_options_go_to_both_tunnels_and_the_cipher_only_with_encryption() -> None:
    options = LabOptions(compress="auto", fragment="always", fragment_timeout=2.0,
                         offload="off", offload_flags="", cipher="auto")
    assert options.tunnel_args() == ["--compress", "auto", "--fragment", "always",
                                     "--fragment-timeout", "2", "--offload", "off"]
    encrypted = LabOptions(encrypt=True, cipher="aes-256-gcm")
    assert encrypted.tunnel_args() == ["--cipher", "aes-256-gcm"]


def test_the_exit_status_names_what_failed() -> None:
    answered = PingResult(sent=3, rtts_ms=[1.0, 1.0, 1.0])
    cut = TransferResult(2000, 2000, 1827, 100.6, True, stopped="no progress for 60 s")
    assert traffic_problem(PingResult(sent=3), None) == "no ping was answered"
    assert traffic_problem(answered, None) == ""
    assert "corrupted" in traffic_problem(answered, TransferResult(10, 10, 10, 1.0, False))
    assert traffic_problem(answered, cut).startswith(
        "the TCP transfer stopped after 1827 of 2000 bytes (no progress for 60 s)")


def test_the_link_aware_queues_drops_count_as_dropped_before_the_link() -> None:
    side = SideStatus(drops={"queue_retransmit": 2, "queue_ack_filtered": 3, "queue_overflow": 1,
                             "mtu": 4},
                      below=SideStatus(drops={"sim_queue_full": 5}))
    assert queue_drops(side) == {"queue_retransmit": 2, "queue_ack_filtered": 3,
                                 "queue_overflow": 1, "sim_queue_full": 5}
