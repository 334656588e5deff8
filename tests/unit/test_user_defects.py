"""Defects a new user met (issue 15), each pinned by a test that failed before its fix:
RX equal to TX refused, -v without library debug lines, rates with a scaled unit, and a SLIP
peer's first packet sent without a leading END."""

from __future__ import annotations

import io
import logging
import random
from collections import Counter

import pytest

from linkbridge.cli import main as cli_main
from linkbridge.cli import show
from linkbridge.framing import slip
from linkbridge.framing.events import Lost
from linkbridge.ops.logs import setup_logging
from linkbridge.plugin.codecs import packet_problem
from linkbridge.plugin.lab import format_rate


@pytest.mark.parametrize("argv", [
    ["up", "2001", "2001", "10.0.0.1"],
    ["up", "--rx", "2001", "--tx", "2001", "--remote", "10.0.0.1"],
    ["up", "--backend", "fou", "--rx", "2001", "--tx", "2001", "--remote", "10.0.0.1"],
    ["tunnel", "--rx", "2001", "--tx", "2001", "--remote", "10.0.0.1"],
    ["link", "udp:127.0.0.1:5555", "--rx", "2001", "--tx", "2001"],
])
def test_rx_equal_to_tx_is_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(argv) == 2
    err = capsys.readouterr().err
    assert err == ("linkbridge: error: RX and TX ports are both 2001: every packet would loop "
                   "back into the tunnel; give two different ports\n")


def log_lines(monkeypatch: pytest.MonkeyPatch, *flags: str) -> str:
    """What `linkbridge FLAGS links` logs when its command logs like linkbridge and pyroute2."""
    stream = io.StringIO()
    monkeypatch.setattr(cli_main, "setup_logging",
                        lambda *args, **kwargs: setup_logging(*args, **kwargs, stream=stream))

    def command(_args: object, _plugins: object) -> None:
        logging.getLogger("linkbridge.tunnel").debug("own debug line")
        logging.getLogger("linkbridge_tcp").debug("plugin debug line")
        logging.getLogger("pyroute2.netlink.nlsocket").debug("netlink message dump")
        logging.getLogger("pyroute2.netlink.nlsocket").warning("library warning")

    monkeypatch.setattr(show, "cmd_links", command)
    try:
        assert cli_main.main([*flags, "links"]) == 0
    finally:
        logging.getLogger().handlers.clear()
    return stream.getvalue()


def test_v_shows_linkbridge_debug_lines_not_the_libraries(monkeypatch: pytest.MonkeyPatch) -> None:
    shown = log_lines(monkeypatch, "-v")
    assert "own debug line" in shown and "plugin debug line" in shown
    assert "library warning" in shown
    assert "netlink message dump" not in shown


def test_vv_adds_library_debug_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    shown = log_lines(monkeypatch, "-vv")
    assert "own debug line" in shown and "netlink message dump" in shown


def test_default_shows_neither_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    shown = log_lines(monkeypatch)
    assert "debug" not in shown and "library warning" in shown


@pytest.mark.parametrize(("bits", "text"), [
    (0, "0 bit/s"), (3840, "3.84 kbit/s"), (999, "999 bit/s"), (4380, "4.38 kbit/s"),
    (9600, "9.60 kbit/s"), (64_000, "64.0 kbit/s"), (999_000, "999 kbit/s"),
    (1_250_000, "1.25 Mbit/s"), (943.7e6, "944 Mbit/s"), (19.06e9, "19.1 Gbit/s"),
])
def test_rates_print_with_a_scaled_unit(bits: float, text: str) -> None:
    assert format_rate(bits) == text


def ip_packet(body: bytes) -> bytes:
    return bytes([0x45, 0, 0, 20 + len(body)]) + bytes(16) + body


def first_frame_decoder(errors: Counter[str]) -> slip.SlipDecoder:
    return slip.SlipDecoder(1500, errors=errors, first_frame=lambda f: packet_problem(f) is None)


def test_first_packet_without_leading_end_whole_bytewise_and_split() -> None:
    """RFC 1055 allows `packet END` framing: the first packet is delivered when it is an IP
    packet, whether fed whole, byte by byte or split at random points."""
    packets = [ip_packet(bytes([0xC0, 0xDB]) * 40), ip_packet(b"second"), ip_packet(b"")]
    line = b"".join(slip.encode(packet)[1:] for packet in packets)
    rng = random.Random(15)
    for chunks in ([line], [bytes([b]) for b in line],
                   *([line[:cut], line[cut:]] for cut in rng.sample(range(1, len(line)), 20))):
        errors: Counter[str] = Counter()
        decoder = first_frame_decoder(errors)
        assert [f for chunk in chunks for f in decoder.feed(chunk)] == packets
        assert not errors


@pytest.mark.parametrize("noise", [b"\x01\x02junk", bytes(30), b"\xdb\x01", bytes(5000)])
def test_first_bytes_that_are_no_packet_stay_garbage(noise: bytes) -> None:
    errors: Counter[str] = Counter()
    decoder = first_frame_decoder(errors)
    [lost, packet] = decoder.feed(noise + slip.encode(ip_packet(b"x")))
    assert isinstance(lost, Lost) and packet == ip_packet(b"x")
    assert errors == {lost.reason: 1}


def test_without_a_first_frame_check_the_start_is_garbage_as_before() -> None:
    errors: Counter[str] = Counter()
    decoder = slip.SlipDecoder(1500, errors=errors)
    assert decoder.feed(slip.encode(ip_packet(b"a"))[1:] + slip.encode(ip_packet(b"b"))) == [
        Lost("slip_garbage"), ip_packet(b"b")]
    assert errors["slip_garbage"] == 1
