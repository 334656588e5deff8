"""The kiss: link's decisions that need no line: which modes refuse to fragment for a peer that
is not linkbridge, an exact `kiss_oversize` and the one log line of an MTU mismatch, the MAC
address mode=ethernet takes from the tunnel, and docs/kiss.md's list of drop reasons."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from linkbridge_kiss.ax25 import PID_IP, Callsign, ui_frame
from linkbridge_kiss.links import KissLink
from linkbridge_kiss.payload import EthernetMode, derived_mac

from linkbridge.datapath.pipeline import LinkBelow, Lower, Pipeline, TunDevice, Upper, validate
from linkbridge.errors import ConfigError
from linkbridge.framing import kiss
from linkbridge.framing.events import Lost
from linkbridge.plugin.registry import plugin_registry
from linkbridge.plugin.tunnel_info import TunnelInfo
from linkbridge.wire import drops
from linkbridge.wire.stack import Fragment

REGISTRY = plugin_registry()
DOC = Path(__file__).parents[2] / "docs" / "kiss.md"
FOREIGN = ("mode=tun", "mode=ethernet", "mode=ax25&call=N0CALL-1")


def plan(url: str, mtu: int | None, fragment: str = "auto",
         via: tuple[str, ...] = ()) -> int | None:
    """The fragment frame size `up --link URL --mtu MTU --fragment MODE` would run with."""
    link = REGISTRY.create_link(url, via)
    return validate(Pipeline(TunDevice(mtu), Upper(),
                             Lower(LinkBelow(link), Fragment(fragment)))).fragment_frame


@pytest.mark.parametrize("mode", FOREIGN)
def test_a_tunnel_mtu_above_the_links_is_refused_toward_a_peer_that_is_not_linkbridge(
        mode: str) -> None:
    url = f"kiss:/dev/ttyS0?{mode}"
    for fragment, via in (("auto", ()), ("never", ()), ("auto", ("sim:?loss=1%",))):
        with pytest.raises(ConfigError, match=r"^tunnel MTU 500 is above the link's MTU 256, "
                                              r"and the peer, .*\(mode=.*--fragment always"):
            plan(url, 500, fragment, via)
    assert plan(url, 256) is None and plan(url, None) is None  # equal MTUs: nothing to split
    assert plan(url, 500, "always") == 256  # the user says the peer is linkbridge
    assert plan(f"kiss+tcp:127.0.0.1:8001?{mode}&mtu=600", 500) is None


def test_raw_mode_peers_are_linkbridge_and_fragment() -> None:
    assert REGISTRY.create_link("kiss:/dev/ttyS0").foreign_peer is None
    assert plan("kiss:/dev/ttyS0", 500) == 256


def link(options: str) -> KissLink:
    created = REGISTRY.create_link(f"kiss:/dev/ttyS0?mtu=256&{options}")
    assert isinstance(created, KissLink)
    return created


@pytest.mark.parametrize(("options", "header"), [
    ("mode=raw", b""), ("mode=tun", b"\x00\x00\x08\x00"),
    ("mode=ethernet&mac=02:00:00:00:00:01", bytes.fromhex("020000000001 020000000002 0800")),
    ("mode=ax25&call=N0CALL-1",
     ui_frame(Callsign("N0CALL", 1), Callsign("N0CALL", 2), PID_IP, b""))])
def test_oversize_is_exact_in_every_mode_and_a_mismatch_is_logged_once(
        options: str, header: bytes, caplog: pytest.LogCaptureFixture) -> None:
    """A packet of the MTU passes; one byte more is `kiss_oversize`, whether the decoder (its
    frame limit) or the mode (AX.25 headers vary) finds it, and the log says so once."""
    kiss_link = link(options)
    packet = bytes([0x45]) + bytes(255)
    assert kiss_link.unwrap(header + packet) == packet
    decoder = kiss_link.framing.decoder(256, kiss_link.counters.drops)
    with caplog.at_level(logging.WARNING):
        decoded = kiss_link.report_loss(decoder.feed(kiss.encode_data(header + packet + b"x")
                                                     * 2))
        assert [kiss_link.unwrap(frame) for frame in decoded] == [None] * len(decoded)
        assert kiss_link.counters.drops == {kiss.OVERSIZE: 2}
        [line] = [record.getMessage() for record in caplog.records]
        assert "kiss:/dev/ttyS0: the peer sent a " in line and "link's MTU 256 allows" in line
        caplog.clear()
        link(options).report_loss([Lost(kiss.OVERSIZE, 600), Lost(kiss.OVERSIZE, 700)])
        [line] = [record.getMessage() for record in caplog.records]
    assert "the peer sent a frame of 600 bytes, more than this link's MTU 256" in line, line


def test_the_ethernet_mac_comes_from_the_tunnel_unless_given() -> None:
    tunnel = TunnelInfo("lb0", 256, ("198.19.0.1/30", "fd00::1/64"), (), "kiss:/dev/ttyS0")
    derived = link("mode=ethernet")
    assert isinstance(derived.payload, EthernetMode)
    assert derived.payload.mac == derived_mac("kiss:/dev/ttyS0")  # before the tunnel is known
    derived.attach_tunnel(tunnel)
    assert derived.payload.mac == derived_mac("lb0", "198.19.0.1/30", "fd00::1/64")
    assert derived.payload.addresses == (bytes([198, 19, 0, 1]),)
    given = link("mode=ethernet&mac=02:00:00:00:00:09")
    given.attach_tunnel(tunnel)
    assert isinstance(given.payload, EthernetMode)
    assert given.payload.mac == bytes.fromhex("020000000009")


def test_docs_list_exactly_the_drop_reasons_the_kiss_links_count() -> None:
    """docs/kiss.md's table of drops names every reason the links declare, and nothing else
    but the core's reasons a stream link counts."""
    text = DOC.read_text()
    section = text[text.index("## Drops"):text.index("\n## ", text.index("## Drops") + 1)]
    listed = set(re.findall(r"^\| `([a-z0-9_]+)` \|", section, re.MULTILINE))
    declared = set(KissLink.drop_reasons)
    assert declared <= listed, f"declared but not in docs/kiss.md: {declared - listed}"
    core = {drops.MALFORMED_FRAME, drops.UNPLUGGED, drops.NOT_CONNECTED, drops.WRITE_TIMEOUT}
    assert listed - declared == core, f"in docs/kiss.md but not counted: {listed - declared}"
    assert core <= set(drops.REASONS)
