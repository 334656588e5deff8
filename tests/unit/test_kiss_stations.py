"""kiss: with many stations (docs/kiss.md "Many stations"): the addressed modes' pure parts
(frames to one callsign or MAC address or to all, the sender told from the source, frames from
other stations dropped, ARP answered per peer for our own addresses only), which modes are
addressed links and which refuse a second peer, and the KISS hub's frame splitter and
channel."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from linkbridge_kiss import arp, payload
from linkbridge_kiss.ax25 import BROADCAST, PID_ARP, PID_IP, Callsign, UiFrame, parse_ui, ui_frame
from linkbridge_kiss.hub import Channel, FrameSplitter
from linkbridge_kiss.links import KissLink, KissStations
from linkbridge_kiss.payload import ETHERTYPE_ARP, Ax25Mode, EthernetMode

from linkbridge.datapath.endpoint import AddressedLink
from linkbridge.datapath.pipeline import LinkBelow, Lower, Pipeline, TunDevice, Upper, validate
from linkbridge.errors import ConfigError
from linkbridge.framing import kiss
from linkbridge.plugin import Link
from linkbridge.plugin.lab import LabStationHosts
from linkbridge.plugin.registry import plugin_registry
from linkbridge.plugin.url import parse_link_url
from linkbridge.wire.peers import PeerTable, parse_peer
from linkbridge.wire.stack import Fragment

REGISTRY = plugin_registry()
ANY = arp.AddressSet(None)
A, B, C, D = (Callsign.parse(text) for text in ("LBA", "LBB-1", "LBC-2", "LBD"))
PACKET = bytes([0x45]) + bytes(19)
OURS = bytes([198, 19, 1, 1])


def ax25_station(call: Callsign = A) -> Ax25Mode:
    mode = Ax25Mode(call, BROADCAST, ANY)
    mode.set_stations(["lbb-1", "LBC-2"])  # as the peer table gives them, any case
    mode.addresses = (OURS,)
    return mode


def test_ax25_stations_get_frames_to_their_callsign_and_broadcasts_to_qst() -> None:
    mode = ax25_station()
    to_b = parse_ui(mode.wrap_to("lbb-1", PACKET))
    assert to_b == UiFrame(B, A, PID_IP, PACKET)
    assert parse_ui(mode.wrap_all(PACKET)) == UiFrame(BROADCAST, A, PID_IP, PACKET)
    assert parse_ui(mode.wrap(PACKET)) == UiFrame(BROADCAST, A, PID_IP, PACKET)  # peer=: QST


def test_ax25_tells_the_sender_by_its_callsign_and_drops_other_stations() -> None:
    mode = ax25_station()
    assert mode.unwrap(ui_frame(A, B, PID_IP, PACKET)) == payload.Received(packet=PACKET,
                                                                           sender="lbb-1")
    assert mode.unwrap(ui_frame(BROADCAST, C, PID_IP, PACKET)).sender == "LBC-2"
    assert mode.unwrap(ui_frame(A, D, PID_IP, PACKET)).drop == payload.UNKNOWN_STATION
    assert mode.unwrap(ui_frame(B, C, PID_IP, PACKET)).drop == payload.AX25_NOT_FOR_US
    lone = Ax25Mode(A, B, ANY)  # no stations (--remote): any sender, no name
    assert lone.unwrap(ui_frame(A, D, PID_IP, PACKET)) == payload.Received(packet=PACKET)


def ax25_arp(asker: Callsign, target: str) -> bytes:
    frame: bytes = ui_frame(BROADCAST, asker, PID_ARP, arp.request(
        arp.HARDWARE_AX25, arp.PROTOCOL_AX25_IP, asker.encode(), "198.19.2.1", target))
    return frame


def test_ax25_arp_is_answered_to_the_asking_peer_for_our_own_address_only() -> None:
    mode = ax25_station()
    reply = mode.unwrap(ax25_arp(B, "198.19.1.1")).reply
    assert reply is not None
    parsed = parse_ui(reply)
    assert isinstance(parsed, UiFrame) and (parsed.destination, parsed.source) == (B, A)
    assert parsed.info[8:15] == A.encode() and parsed.info[15:19] == OURS
    reply = mode.unwrap(ax25_arp(C, "198.19.1.1")).reply
    assert reply is not None
    parsed = parse_ui(reply)
    assert isinstance(parsed, UiFrame) and parsed.destination == C
    # on a shared channel `any` is not every address: C's is C's to answer
    assert mode.unwrap(ax25_arp(B, "198.19.3.1")).drop == payload.ARP_IGNORED
    assert mode.unwrap(ax25_arp(D, "198.19.1.1")).drop == payload.UNKNOWN_STATION
    listed = Ax25Mode(A, BROADCAST, arp.parse_networks("198.19.0.0/16"))
    listed.set_stations(["LBB-1"])
    assert listed.unwrap(ax25_arp(B, "198.19.3.1")).reply is not None  # arp= as given


@pytest.mark.parametrize(("stations", "message"), [
    (["LBB-1", "TOOLONG7"], "endpoint 'TOOLONG7': expected a callsign"),
    (["LBB-1", "lbb-1"], "endpoints 'LBB-1' and 'lbb-1' are the same station"),
    (["LBA"], "endpoint 'LBA' is our own callsign"),
])
def test_ax25_stations_that_cannot_be_are_refused(stations: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Ax25Mode(A, BROADCAST, ANY).set_stations(stations)


def test_stations_given_again_replace_the_earlier_ones_or_change_nothing() -> None:
    """A reload gives the whole new list: a peer removed is a stranger from then on, and a
    list refused leaves the one before."""
    mode = Ax25Mode(A, BROADCAST, ANY)
    mode.set_stations(["LBB-1", "LBC-2"])
    mode.set_stations(["LBC-2", "LBD"])
    assert sorted(mode.stations.addresses) == ["LBC-2", "LBD"]
    with pytest.raises(ValueError, match="our own callsign"):
        mode.set_stations(["LBE", "LBA"])
    assert sorted(mode.stations.addresses) == ["LBC-2", "LBD"]


MAC_A, MAC_B, MAC_C = (bytes.fromhex(f"02000000000{n}") for n in (1, 2, 3))


def test_ethernet_stations_by_mac_broadcast_and_arp_per_peer() -> None:
    mode = EthernetMode(MAC_A, ANY)
    mode.set_stations(["02:00:00:00:00:02", "02:00:00:00:00:03"])
    mode.addresses = (OURS,)
    assert mode.wrap_to("02:00:00:00:00:03", PACKET)[:14] == MAC_C + MAC_A + b"\x08\x00"
    assert mode.wrap_all(PACKET)[:14] == b"\xff" * 6 + MAC_A + b"\x08\x00"
    received = mode.unwrap(MAC_A + MAC_B + b"\x08\x00" + PACKET)
    assert (received.packet, received.sender) == (PACKET, "02:00:00:00:00:02")
    assert mode.unwrap(b"\xff" * 6 + MAC_C + b"\x08\x00" + PACKET).sender == "02:00:00:00:00:03"
    stranger = bytes.fromhex("020000000009")
    assert mode.unwrap(MAC_A + stranger + b"\x08\x00" + PACKET).drop == payload.UNKNOWN_STATION

    def asking(mac: bytes, target: str) -> bytes:
        frame: bytes = b"\xff" * 6 + mac + ETHERTYPE_ARP.to_bytes(2, "big") + arp.request(
            arp.HARDWARE_ETHERNET, arp.PROTOCOL_IPV4, mac, "198.19.3.1", target)
        return frame

    reply = mode.unwrap(asking(MAC_C, "198.19.1.1")).reply
    assert reply is not None and reply[:12] == MAC_C + MAC_A
    assert mode.unwrap(asking(MAC_C, "198.19.2.1")).drop == payload.ARP_IGNORED  # B's address
    with pytest.raises(ValueError, match="endpoint 'LBB': expected a MAC address"):
        EthernetMode(MAC_A, ANY).set_stations(["LBB"])


def multipoint(link: Link | str, *peers: str) -> Pipeline:
    below = LinkBelow(REGISTRY.create_link(link) if isinstance(link, str) else link)
    return Pipeline(TunDevice(), Upper(), Lower(below, Fragment("auto")),
                    peers=PeerTable(map(parse_peer, peers)))


def test_ax25_and_ethernet_modes_are_addressed_links_tun_and_raw_carry_one_peer() -> None:
    for url in ("kiss:/dev/ttyS0?mode=ax25&call=LBA", "kiss+tcp:127.0.0.1:8001?mode=ethernet"):
        assert isinstance(REGISTRY.create_link(url), AddressedLink)
    for url in ("kiss:/dev/ttyS0", "kiss:/dev/ttyS0?mode=tun", "kiss+tcp:127.0.0.1:8001"):
        assert not isinstance(REGISTRY.create_link(url), AddressedLink)
    link = REGISTRY.create_link("kiss:/dev/ttyS0?mode=ax25&call=LBA")
    assert isinstance(link, KissStations) and isinstance(link.payload, Ax25Mode)
    validate(multipoint(link, "b,allowed=198.19.2.0/24,endpoint=LBB-1",
                        "c,allowed=198.19.3.0/24,endpoint=LBC-2"))
    assert link.payload.stations.addresses == {"LBB-1": B, "LBC-2": C}


@pytest.mark.parametrize(("url", "message"), [
    ("kiss:/dev/ttyS0?mode=tun", r"^link kiss:/dev/ttyS0 has no station addresses: it carries "
                                 r"one peer, tncattach \(mode=tun\), and no endpoint="),
    ("kiss:/dev/ttyS0", "^link kiss:/dev/ttyS0 has no station addresses: it carries one peer "
                        "and no endpoint="),
    ("kiss:/dev/ttyS0?mode=ax25&call=LBA&peer=LBB-1", "peer= names the one peer of --remote"),
    ("kiss:/dev/ttyS0?mode=ax25&call=LBA", "^link kiss:/dev/ttyS0: endpoint 'x!': expected a "
                                           "callsign"),
])
def test_a_second_peer_is_refused_in_one_line_where_the_mode_has_no_stations(
        url: str, message: str) -> None:
    endpoint = ",endpoint=x!" if "call=" in url and "peer=" not in url else ",endpoint=LBB-1"
    pipeline = multipoint(url, f"b,allowed=198.19.2.0/24{endpoint}",
                          "c,allowed=198.19.3.0/24,endpoint=LBC-2")
    with pytest.raises(ConfigError, match=message):
        validate(pipeline)


@pytest.mark.parametrize(("url", "topology", "message"), [
    ("kiss:?baud=9600", None, "needs station addresses: give mode=ax25 or mode=ethernet"),
    ("kiss:?mode=tun", None, "needs station addresses"),
    ("kiss:/dev/ttyS0?mode=ax25", None, "the lab chooses the kiss: ptys"),
    ("kiss:?mode=ax25&call=N0CALL", None, "the lab chooses the kiss: ptys, callsigns"),
    ("kiss:?mode=ethernet&mac=02:00:00:00:00:01", None, "the lab chooses"),
    ("kiss:?mode=ax25", "line.topology", "--topology needs the sim: radio medium"),
])
def test_the_kiss_lab_needs_an_addressed_mode_and_chooses_the_addresses(
        url: str, topology: str | None, message: str) -> None:
    hosts = LabStationHosts(("a", "b"), ("198.18.1.1", "198.18.1.2"), ("A", "B"), topology)
    with pytest.raises(ConfigError, match=message), \
            KissLink.lab_stations(parse_link_url(url), hosts):
        pass


def stream_of(frames: list[bytes], noise: bytes) -> bytes:
    return noise + b"".join(kiss.encode_data(frame) for frame in frames)


@given(st.lists(st.binary(max_size=80), max_size=6), st.binary(max_size=8).filter(
    lambda noise: kiss.FEND not in noise), st.randoms())
def test_the_hub_cuts_whole_frames_however_the_stream_is_split(
        frames: list[bytes], noise: bytes, rng: random.Random) -> None:
    data = stream_of(frames, noise)
    expected = [kiss.encode_data(frame) for frame in frames]
    assert FrameSplitter().feed(data) == expected
    splitter, cuts = FrameSplitter(), sorted(rng.choices(range(len(data) + 1), k=3))
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    assert [frame for piece in pieces for frame in splitter.feed(piece)] == expected
    splitter = FrameSplitter()
    assert [frame for byte in data for frame in splitter.feed(bytes([byte]))] == expected


def test_the_hub_drops_frames_too_long_and_finds_the_next() -> None:
    splitter = FrameSplitter(max_size=10)
    assert splitter.feed(kiss.encode_data(bytes(20)) + kiss.encode_data(b"ok")) == [
        kiss.encode_data(b"ok")]
    assert splitter.dropped == 1
    splitter = FrameSplitter(max_size=10)
    assert splitter.feed(b"\xc0\x00" + bytes(5)) == [] and splitter.feed(bytes(9)) == []
    assert splitter.feed(b"\xc0\x00ok\xc0") == [b"\xc0\x00ok\xc0"] and splitter.dropped == 1


def test_the_hub_channel_carries_one_frame_at_a_time_at_its_rate() -> None:
    channel = Channel(960.0)  # 9600 baud, 8N1
    assert channel.heard_at(10.0, 96) == pytest.approx(10.1)
    assert channel.heard_at(10.05, 96) == pytest.approx(10.2)  # waited for the first
    assert channel.heard_at(11.0, 48) == pytest.approx(11.05)  # the channel was idle
    assert Channel(None).heard_at(3.0, 1000) == 3.0
