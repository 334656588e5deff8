"""The compression layer's endpoint (datapath/compressing.py) over in-memory endpoints: figures
per direction, feedback that goes down and back, and the layer checks of `--compress vj`."""

from __future__ import annotations

import pytest

from linkbridge.cli.parser import build_parser
from linkbridge.cli.up import config_checks
from linkbridge.datapath.compressing import CompressingEndpoint
from linkbridge.errors import ConfigError
from linkbridge.ops.config import parse_config, subparser
from linkbridge.plugin.registry import LinkRegistry, get_plugin_manager
from linkbridge.testing import memory_pair
from linkbridge.wire import drops
from linkbridge.wire.frames import COMPRESSED, UNCOMPRESSED
from linkbridge.wire.packet import packet_problem
from linkbridge.wire.stack import check_compress
from tests.helpers.ip_packets import A4, B4, echo, tcp, timestamps


def ends(mode: str) -> tuple[CompressingEndpoint, CompressingEndpoint]:
    a, b = memory_pair()
    return CompressingEndpoint(a, mode), CompressingEndpoint(b, mode)


@pytest.mark.parametrize("mode", ["vj", "auto"])
def test_both_ways_with_figures(mode: str) -> None:
    a, b = ends(mode)
    there = [tcp(seq=1 + 48 * i, payload=bytes(48), ip_id=i + 1) for i in range(20)]
    back = [tcp(sport=5001, dport=40000, seq=9, ack=1 + 48 * i, ip_id=i + 1, src=B4, dst=A4)
            for i in range(1, 21)]
    for packet in there:
        a.send(packet)
    assert b.receive(0) == there
    for packet in back:
        b.send(packet)
    assert a.receive(0) == back
    figures = a.counters.as_dict()["compress"]
    assert isinstance(figures, dict)
    assert figures["mode"] == mode
    assert figures["tx"]["packets"] == 20 and figures["tx"]["compressed"] == 19
    assert figures["tx"]["full"] == 1
    assert figures["rx"]["compressed"] == 19
    assert figures["tx"]["saved"] == 19 * 37 if mode == "vj" else figures["tx"]["saved"] > 0
    assert b.counters.as_dict()["compress"]["rx"]["saved"] == figures["tx"]["saved"]  # type: ignore[index]
    assert a.counters.tx_packets == 20 and b.counters.rx_packets == 20


def test_auto_feedback_goes_down_and_repairs_the_context() -> None:
    a, b = ends("auto")
    packets = [tcp(seq=1 + 48 * i, payload=bytes(48), options=timestamps(i, 1)) for i in range(6)]
    a.send(packets[0])
    b.below.receive(0)  # the full header is lost
    a.send(packets[1])
    assert b.receive(0) == []
    assert b.counters.drops == {drops.COMPRESS_NO_CONTEXT: 1}
    assert b.counters.tx.feedback == 1
    assert a.receive(0) == []  # feedback is consumed, never delivered
    assert a.counters.rx.feedback == 1
    for packet in packets[2:]:
        a.send(packet)
    assert b.receive(0) == packets[2:]
    assert a.counters.tx.full == 2


def test_mismatched_ends_count_drops_and_deliver_nothing_wrong() -> None:
    a, b_plain = memory_pair()
    compressing = CompressingEndpoint(a, "auto")
    for i in range(5):
        compressing.send(echo(seq=i))
    frames = b_plain.receive(0)
    # no IP packets: the tunnel's packet check counts them as malformed_not_ip on a peer
    # without compression
    assert [frame[0] >> 4 for frame in frames] == [UNCOMPRESSED] + [COMPRESSED] * 4
    a2, b2 = memory_pair()
    vj, auto = CompressingEndpoint(a2, "vj"), CompressingEndpoint(b2, "auto")
    for i in range(40):
        vj.send(tcp(seq=1 + i, payload=b"x", ip_id=i * 7, sport=40000 + i % 3))
    # what auto does not rebuild it hands up as it is; the tunnel's check drops it, counted
    assert all(packet_problem(packet) == drops.NOT_IP for packet in auto.receive(0))


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"fragmenting": True, "encrypting": False, "keepalive": False}, "fragmentation"),
    ({"fragmenting": False, "encrypting": True, "keepalive": False}, "encryption"),
    ({"fragmenting": False, "encrypting": False, "keepalive": True}, "keepalives"),
])
def test_vj_refuses_to_share_the_link(kwargs: dict[str, bool], words: str) -> None:
    with pytest.raises(ConfigError, match=f"vj cannot share a link with {words}"):
        check_compress("vj", **kwargs)
    check_compress("auto", **kwargs)


def test_an_unknown_mode_names_the_choices() -> None:
    with pytest.raises(ConfigError, match="off, vj, auto"):
        check_compress("lzw", fragmenting=False, encrypting=False, keepalive=False)


def test_config_files_take_compress_per_tunnel() -> None:
    up = subparser(build_parser(), "up")
    checks = config_checks(LinkRegistry(get_plugin_manager()))
    text = ('compress = "auto"\n[[tunnel]]\nlink = "udp:1.2.3.4:5"\n'
            '[[tunnel]]\nlink = "udp:1.2.3.4:6"\ncompress = "vj"\n')
    tunnels = parse_config(text, "t.toml", up, checks)
    assert [tunnel.args.compress for tunnel in tunnels] == ["auto", "vj"]
    with pytest.raises(ConfigError, match=r"tunnel\[0\]\.compress: 'lzw' is not one of"):
        parse_config('[[tunnel]]\ncompress = "lzw"\n', "t.toml", up, checks)


@pytest.mark.parametrize("reason", [drops.CRC, drops.SLIP_BAD_ESCAPE, drops.KISS_CRC, None])
def test_vj_tosses_after_a_framing_error_of_the_link_below(reason: str | None) -> None:
    """A framing error the link counts (a CRC mismatch, a bad SLIP escape...) is a lost frame:
    the layer tells the VJ decompressor, which then tosses compressed frames until one names
    its connection. Unreported (None), the loss lets B's frame pair with A's header."""
    a, b = ends("vj")
    a0 = tcp(sport=20001, seq=1000, ack=7001, ip_id=1)
    b1 = tcp(sport=20002, seq=1000, ack=7000, ip_id=2, payload=b"\xce")
    a.send(a0)
    assert b.receive(0) == [a0]
    a.send(tcp(sport=20001, seq=1000, ack=7002, ip_id=2))
    a.send(tcp(sport=20002, seq=1000, ack=7000, ip_id=1))
    assert len(b.below.receive(0)) == 2  # both lost on the line...
    if reason is not None:
        b.below.counters.drop(reason)  # ...the way the link's decoder counts a damaged frame
        assert b.receive(0) == []  # a read with no frame still reports it
    a.send(b1)
    if reason is None:
        assert b.receive(0) == [tcp(sport=20001, seq=1000, ack=7001, ip_id=2, payload=b"\xce")]
        return
    assert b.receive(0) == []
    assert b.counters.drops == {drops.COMPRESS_TOSSED: 1}
    b2 = tcp(sport=20002, seq=1000, ack=7000, ip_id=3, payload=b"\xce")  # TCP resends it
    a.send(b2)
    assert b.receive(0) == [b2]  # a repeat goes uncompressed and resynchronises


def test_other_drops_of_the_link_below_do_not_toss() -> None:
    a, b = ends("vj")
    packets = [tcp(seq=1 + 48 * i, payload=bytes(48), ip_id=i + 1) for i in range(3)]
    a.send(packets[0])
    assert b.receive(0) == packets[:1]
    b.below.counters.drop(drops.MTU)
    a.send(packets[1])
    assert b.receive(0) == packets[1:2]
