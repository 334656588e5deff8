"""The compression layer's endpoint (datapath/compressing.py) over in-memory endpoints: figures
per direction, feedback that goes down and back, and the layer checks of `--compress vj`."""

from __future__ import annotations

import pytest

from linkbridge.cli.parser import build_parser
from linkbridge.cli.up import config_checks
from linkbridge.datapath.compressing import CompressingEndpoint
from linkbridge.datapath.counters import Counters
from linkbridge.datapath.endpoint import LossReporter
from linkbridge.errors import ConfigError
from linkbridge.framing import crc16, slip
from linkbridge.ops.config import parse_config, subparser
from linkbridge.plugin.link import ReportsLoss
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


class SlipLine(ReportsLoss):
    """An endpoint whose frames cross an in-memory line as SLIP bytes (with a CRC-16 trailer
    when `crc`), decoded by the real codec on receive: damage on `line` yields loss marks."""

    name = "slip-line"

    def __init__(self, crc: bool = False) -> None:
        self.counters = Counters()
        self.line = bytearray()  # what the peer sent, not yet received
        self.peer = self
        self.crc = crc
        decoder = slip.SlipDecoder(1500, errors=self.counters.drops)
        self._decoder = crc16.CrcChecked(decoder, self.counters.drops) if crc else decoder

    def send(self, packet: bytes) -> None:
        self.peer.line += slip.encode(crc16.append_crc(packet) if self.crc else packet)

    def receive(self, timeout: float) -> list[bytes]:
        data = bytes(self.line)
        self.line.clear()
        return self.report_loss(self._decoder.feed(data))

    def close(self) -> None:
        pass


def slip_ends(crc: bool) -> tuple[CompressingEndpoint, CompressingEndpoint, SlipLine]:
    a, b = SlipLine(crc), SlipLine(crc)
    a.peer, b.peer = b, a
    b.line += bytes([slip.END])  # B joined the line before A's first frame
    return CompressingEndpoint(a, "vj"), CompressingEndpoint(b, "vj"), b


# What is left on the line of two frames lost to noise: a frame with a bad escape, one whose
# CRC does not match, or (None) nothing at all, a loss no decoder can see
DAMAGE = {slip.BAD_ESCAPE: bytes([slip.ESC, 0x01, slip.END]),
          crc16.CRC: slip.encode(b"noise, no trailer"), None: b""}


@pytest.mark.parametrize("reason", [slip.BAD_ESCAPE, crc16.CRC, None])
def test_vj_tosses_when_the_link_below_reports_a_loss(reason: str | None) -> None:
    """A loss mark from the link's decoder (a CRC mismatch, a bad SLIP escape) reaches the
    layer as an event: the VJ decompressor then tosses compressed frames until one names its
    connection. Unreported (None), the loss lets B's frame pair with A's header."""
    a, b, line = slip_ends(crc=reason == crc16.CRC)
    a0 = tcp(sport=20001, seq=1000, ack=7001, ip_id=1)
    b1 = tcp(sport=20002, seq=1000, ack=7000, ip_id=2, payload=b"\xce")
    a.send(a0)
    assert b.receive(0) == [a0]
    a.send(tcp(sport=20001, seq=1000, ack=7002, ip_id=2))
    a.send(tcp(sport=20002, seq=1000, ack=7000, ip_id=1))
    line.line[:] = DAMAGE[reason]  # both lost on the line
    assert b.receive(0) == []
    assert dict(line.counters.drops) == ({reason: 1} if reason else {})
    a.send(b1)
    if reason is None:
        assert b.receive(0) == [tcp(sport=20001, seq=1000, ack=7001, ip_id=2, payload=b"\xce")]
        return
    assert b.receive(0) == []
    assert b.counters.drops == {drops.COMPRESS_TOSSED: 1}
    b2 = tcp(sport=20002, seq=1000, ack=7000, ip_id=3, payload=b"\xce")  # TCP resends it
    a.send(b2)
    assert b.receive(0) == [b2]  # a repeat goes uncompressed and resynchronises


def test_a_loss_in_the_middle_of_a_read_tosses_its_compressed_frames() -> None:
    """Which frames of one read came after the loss is not used: the decompressor tosses from
    the first compressed frame of the read on, until a frame names its connection."""
    a, b, line = slip_ends(crc=False)
    packets = [tcp(seq=1 + 48 * i, payload=bytes(48), ip_id=i + 1) for i in range(4)]
    a.send(packets[0])
    assert b.receive(0) == packets[:1]
    a.send(packets[1])
    line.line += DAMAGE[slip.BAD_ESCAPE]
    a.send(packets[2])
    assert b.receive(0) == []
    assert b.counters.drops == {drops.COMPRESS_TOSSED: 2}


def test_other_drops_of_the_link_below_do_not_toss() -> None:
    a, b, line = slip_ends(crc=False)
    packets = [tcp(seq=1 + 48 * i, payload=bytes(48), ip_id=i + 1) for i in range(3)]
    a.send(packets[0])
    assert b.receive(0) == packets[:1]
    line.counters.drop(drops.MTU)
    a.send(packets[1])
    assert b.receive(0) == packets[1:2]


def test_only_vj_listens_to_loss_and_only_a_loss_reporter_is_heard() -> None:
    """`auto` frames decode alone: no subscription. An endpoint below that cannot report loss
    (no LossReporter) is used as it is; a `--via` wrapper passes its link's reports on."""
    heard: list[str] = []
    below = SlipLine()
    CompressingEndpoint(below, "auto")
    below.on_loss(heard.append)
    below.line += bytes([slip.END, slip.ESC, 0x01, slip.END])
    below.receive(0)
    assert heard == [slip.BAD_ESCAPE]  # only the test's listener: auto did not subscribe
    assert not isinstance(memory_pair()[0], LossReporter)
