"""The kiss: link's pure parts: callsigns, AX.25 UI frames, ARP answers, the four payload
modes and what is sent to a TNC on (re)connect."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st
from linkbridge_kiss import arp, payload, tnc
from linkbridge_kiss.ax25 import (
    BROADCAST,
    PID_ARP,
    PID_IP,
    PID_NO_LAYER3,
    Callsign,
    UiFrame,
    parse_ui,
    ui_frame,
)
from linkbridge_kiss.payload import (
    ETHERTYPE_ARP,
    Ax25Mode,
    EthernetMode,
    RawMode,
    TunHeaderMode,
)

from linkbridge.framing import kiss
from linkbridge.wire import drops
from tests.unit.test_liveness import Clock

calls = st.builds(Callsign, st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1,
                                    max_size=6), st.integers(0, 15))
ipv4_packets = st.binary(max_size=300).map(lambda body: bytes([0x45]) + body)
ipv6_packets = st.binary(max_size=300).map(lambda body: bytes([0x60]) + body)
ANY = arp.AddressSet(None)
ME, PEER = Callsign.parse("N0CALL-1"), Callsign.parse("n0call-2")


@given(calls)
def test_callsigns_survive_text_and_the_address_field(call: Callsign) -> None:
    assert Callsign.parse(str(call)) == call
    assert Callsign.decode(call.encode(last=True, command=True)) == call


@pytest.mark.parametrize("text", ["", "TOOLONG7", "N0CALL-16", "N0-CALL", "N0CALL-"])
def test_bad_callsigns_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="callsign"):
        Callsign.parse(text)


@given(calls, calls, st.integers(0, 255), st.binary(max_size=300))
def test_ui_frames_round_trip(destination: Callsign, source: Callsign, pid: int,
                              info: bytes) -> None:
    assert parse_ui(ui_frame(destination, source, pid, info)) == UiFrame(destination, source,
                                                                        pid, info)


def test_ui_frame_layout_matches_ax25() -> None:
    frame = ui_frame(PEER, ME, PID_IP, b"x")
    assert frame[:7] == bytes(c << 1 for c in b"N0CALL") + bytes([0xE0 | 2 << 1])  # C bit
    assert frame[7:14] == bytes(c << 1 for c in b"N0CALL") + bytes([0x60 | 1 << 1 | 1])
    assert frame[14:] == bytes([0x03, 0xCC]) + b"x"


def test_malformed_and_connected_mode_frames_are_told_apart() -> None:
    good = ui_frame(PEER, ME, PID_IP, b"x")
    assert parse_ui(good[:10]) == "malformed"
    assert parse_ui(good[:15]) == "malformed"  # no PID
    no_end = PEER.encode() * 11
    assert parse_ui(no_end) == "malformed"
    assert parse_ui(good[:14] + bytes([0x00, 0xCC]) + b"x") == "not_ui"  # an I frame


def test_ax25_mode_carries_ip_to_the_peer_and_filters_other_stations() -> None:
    mine, theirs = Ax25Mode(ME, PEER, ANY), Ax25Mode(PEER, ME, ANY)
    packet = bytes([0x45]) + bytes(19)
    assert theirs.unwrap(mine.wrap(packet)).packet == packet
    assert mine.unwrap(mine.wrap(packet)).drop == payload.AX25_NOT_FOR_US  # to PEER, not ME
    assert mine.unwrap(ui_frame(BROADCAST, PEER, PID_IP, packet)).packet == packet
    assert mine.unwrap(ui_frame(ME, PEER, PID_NO_LAYER3, b"hello")).drop == payload.AX25_OTHER_PID
    assert mine.unwrap(b"\x00" * 5).drop == payload.AX25_MALFORMED
    assert parse_ui(mine.beacon()) == UiFrame(Callsign("ID"), ME, PID_NO_LAYER3, b"N0CALL-1")


def test_ax25_arp_requests_for_our_addresses_are_answered() -> None:
    mode = Ax25Mode(ME, PEER, arp.parse_networks("198.19.0.2"))
    asking = arp.request(arp.HARDWARE_AX25, arp.PROTOCOL_AX25_IP, PEER.encode(), "198.19.0.1",
                         "198.19.0.2")
    received = mode.unwrap(ui_frame(BROADCAST, PEER, PID_ARP, asking))
    assert received.reply is not None
    reply = parse_ui(received.reply)
    assert isinstance(reply, UiFrame) and reply.destination == PEER and reply.pid == PID_ARP
    assert reply.info[:8] == bytes.fromhex("0003 00cc 07 04 0002")
    assert reply.info[8:15] == ME.encode()
    assert reply.info[15:19] == ipaddress.IPv4Address("198.19.0.2").packed
    assert reply.info[19:26] == PEER.encode()
    other = arp.request(arp.HARDWARE_AX25, arp.PROTOCOL_IPV4, PEER.encode(), "198.19.0.1",
                        "198.19.0.9")
    assert mode.unwrap(ui_frame(BROADCAST, PEER, PID_ARP, other)).drop == payload.ARP_IGNORED


def test_ethernet_mode_answers_arp_and_learns_the_peer() -> None:
    ours, theirs = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
    mode = EthernetMode(ours, ANY)
    packet = bytes([0x45]) + bytes(19)
    assert mode.wrap(packet)[:14] == b"\xff" * 6 + ours + b"\x08\x00"  # peer unknown yet
    asking = arp.request(arp.HARDWARE_ETHERNET, arp.PROTOCOL_IPV4, theirs, "10.0.0.2",
                         "10.0.0.1")
    received = mode.unwrap(b"\xff" * 6 + theirs + ETHERTYPE_ARP.to_bytes(2, "big") + asking)
    assert received.reply is not None
    assert received.reply[:14] == theirs + ours + b"\x08\x06"
    assert received.reply[14 + 8:14 + 14] == ours
    assert mode.wrap(packet)[:6] == theirs
    assert mode.unwrap(theirs + ours + b"\x08\x00" + packet).drop == payload.ETHERNET_OTHER
    assert mode.unwrap(ours + theirs + b"\x86\xdd" + b"\x60" + bytes(39)).packet is not None
    assert mode.unwrap(b"short").drop == drops.MALFORMED_FRAME


@given(st.lists(ipv4_packets | ipv6_packets, max_size=5))
def test_every_mode_round_trips_ip_packets(packets: list[bytes]) -> None:
    mac_a, mac_b = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
    for sender, receiver in ((RawMode(), RawMode()), (TunHeaderMode(), TunHeaderMode()),
                             (EthernetMode(mac_a, ANY), EthernetMode(mac_b, ANY)),
                             (Ax25Mode(ME, PEER, ANY), Ax25Mode(PEER, ME, ANY))):
        for packet in packets:
            frame = sender.wrap(packet)
            assert len(frame) <= len(packet) + sender.overhead
            assert receiver.unwrap(frame).packet == packet


def test_tun_mode_header_is_tncattachs_packet_information() -> None:
    assert TunHeaderMode().wrap(b"\x45abc")[:4] == b"\x00\x00\x08\x00"
    assert TunHeaderMode().wrap(b"\x60abc")[:4] == b"\x00\x00\x86\xdd"
    assert TunHeaderMode().unwrap(b"\x00\x00\x08\x00").drop == drops.MALFORMED_FRAME


def test_tnc_parameters_become_kiss_command_frames_in_order() -> None:
    config = {"txdelay": 0.3, "persist": 63, "slottime": 0.1, "txtail": None,
              "fullduplex": False, "sethardware": b"\x01\x02"}
    assert tnc.parameter_frames(config, 1) == b"".join((
        kiss.encode_command(kiss.TXDELAY, b"\x1e", 1),
        kiss.encode_command(kiss.PERSISTENCE, b"\x3f", 1),
        kiss.encode_command(kiss.SLOTTIME, b"\x0a", 1),
        kiss.encode_command(kiss.FULLDUPLEX, b"\x00", 1),
        kiss.encode_command(kiss.SETHARDWARE, b"\x01\x02", 1)))
    assert tnc.parameter_frames({}, 0) == b""
    assert tnc.parameter_frames({"txdelay": 10.0}, 0) == kiss.encode_command(kiss.TXDELAY,
                                                                             b"\xff")


def test_init_string_escapes_and_option_parsers() -> None:
    assert tnc.init_string(r"KISS ON\rRESTART\r\n\x1b\\") == b"KISS ON\rRESTART\r\n\x1b\\"
    assert tnc.hex_bytes("0a1B") == b"\x0a\x1b"
    for parse, bad in ((tnc.init_string, ""), (tnc.hex_bytes, "xyz"),
                       (arp.parse_networks, "10.0.0.0/33")):
        with pytest.raises(ValueError):
            parse(bad)
    assert str(arp.parse_networks("10.0.0.1,10.1.0.0/16")) == "10.0.0.1/32,10.1.0.0/16"


def test_connected_mode_frames_are_not_ui_and_beacons_are_another_pid() -> None:
    mode = Ax25Mode(ME, PEER, ANY)
    addresses = ME.encode(command=True) + PEER.encode(last=True)
    for control in (0x2F, 0x3F, 0x63, 0x43, 0x01, 0x11, 0x00):  # SABM, SABM+P, UA, DISC, RR, I
        assert mode.unwrap(addresses + bytes([control])).drop == payload.AX25_NOT_UI
    assert mode.unwrap(addresses).drop == payload.AX25_MALFORMED  # no control byte
    assert mode.unwrap(addresses + bytes([0x03])).drop == payload.AX25_MALFORMED  # UI, no PID
    beacon = Ax25Mode(PEER, ME, ANY).beacon()  # to ID, not to us
    assert mode.unwrap(beacon).drop == payload.AX25_OTHER_PID
    assert mode.unwrap(ui_frame(Callsign("APRS"), PEER, PID_NO_LAYER3, b"!")).drop \
        == payload.AX25_OTHER_PID
    assert mode.unwrap(ui_frame(Callsign("OTHER"), PEER, PID_IP, b"\x45")).drop \
        == payload.AX25_NOT_FOR_US


@pytest.mark.parametrize("ident", [b"N0CALL", b"N0CALL-1", b"AB1CDE-10 linkbridge test station",
                                   b"ACEGIK-1 station ID\r\n"])
def test_tncattach_id_frames_are_malformed_in_tun_and_ethernet_mode(ident: bytes) -> None:
    """tncattach --id sends the text as a bare data frame, with no header of either mode."""
    assert TunHeaderMode().unwrap(ident).drop == drops.MALFORMED_FRAME
    assert EthernetMode(OURS, ANY).unwrap(ident).drop == drops.MALFORMED_FRAME


def test_tun_mode_wants_an_ip_packet_of_the_type_its_header_names() -> None:
    assert TunHeaderMode().unwrap(b"\x00\x00\x86\xdd\x45" + bytes(19)).drop \
        == drops.MALFORMED_FRAME
    assert TunHeaderMode().unwrap(b"\x00\x01\x08\x00\x45" + bytes(19)).packet is not None


OURS, THEIRS, NEW = (bytes.fromhex(text) for text in ("020000000001", "020000000002",
                                                      "020000000003"))
ARP = ETHERTYPE_ARP.to_bytes(2, "big")


def ethernet_arp(source: bytes, message: bytes, destination: bytes = b"\xff" * 6) -> bytes:
    return destination + source + ARP + message


def test_ethernet_mode_answers_no_probe_and_no_announcement() -> None:
    mode = EthernetMode(OURS, ANY)
    probe = arp.request(arp.HARDWARE_ETHERNET, arp.PROTOCOL_IPV4, THEIRS, "0.0.0.0", "10.0.0.2")
    announcement = arp.request(arp.HARDWARE_ETHERNET, arp.PROTOCOL_IPV4, THEIRS, "10.0.0.2",
                               "10.0.0.2")
    for message in (probe, announcement):
        assert mode.unwrap(ethernet_arp(THEIRS, message)).drop == payload.ARP_IGNORED
    assert mode.peer_mac == b"\xff" * 6  # nor learned from them


def test_ethernet_mode_announces_its_addresses_and_asks_again_for_a_silent_peer() -> None:
    clock = Clock()
    clock.now = 100.0
    mode = EthernetMode(OURS, ANY, clock, rearp=1.0)
    mode.addresses = payload.ipv4_addresses(["10.0.0.1/24", "fd00::1/64"])
    [announcement] = mode.announcements()
    assert announcement[:14] == b"\xff" * 6 + OURS + ARP
    assert announcement[14:] == arp.request(arp.HARDWARE_ETHERNET, arp.PROTOCOL_IPV4, OURS,
                                            "10.0.0.1", "10.0.0.1")
    packet = bytes([0x45]) + bytes(15) + bytes([10, 0, 0, 2])
    assert mode.recheck(packet) is None  # nobody to ask about yet: frames go to broadcast
    asking = arp.request(arp.HARDWARE_ETHERNET, arp.PROTOCOL_IPV4, THEIRS, "10.0.0.2",
                         "10.0.0.1")
    assert mode.unwrap(ethernet_arp(THEIRS, asking)).reply is not None
    assert (mode.peer_mac, mode.peer_ip) == (THEIRS, bytes([10, 0, 0, 2]))
    clock.now += 0.9
    assert mode.recheck(packet) is None  # heard from 0.9 s ago
    clock.now += 0.2
    question = mode.recheck(packet)
    assert question is not None and question[:14] == b"\xff" * 6 + OURS + ARP
    assert question[14:] == arp.request(arp.HARDWARE_ETHERNET, arp.PROTOCOL_IPV4, OURS,
                                        "10.0.0.1", "10.0.0.2")
    clock.now += 0.5
    assert mode.recheck(packet) is None  # one question per second at most
    # the peer restarted with another MAC address: its reply says so
    reply = arp.ArpMessage(arp.HARDWARE_ETHERNET, arp.PROTOCOL_IPV4, arp.REQUEST, OURS,
                           bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])).reply(NEW)
    assert mode.unwrap(ethernet_arp(NEW, reply, OURS)).drop == payload.ARP_IGNORED
    assert mode.wrap(packet)[:6] == NEW
    clock.now += 0.9
    assert mode.recheck(packet) is None  # heard from just now
    assert EthernetMode(OURS, ANY, clock, rearp=0.0).recheck(packet) is None


def test_ethernet_mode_learns_the_peer_from_ip_and_its_announcements() -> None:
    mode = EthernetMode(OURS, ANY)
    asking = arp.request(arp.HARDWARE_ETHERNET, arp.PROTOCOL_IPV4, THEIRS, "10.0.0.2",
                         "10.0.0.1")
    mode.unwrap(ethernet_arp(THEIRS, asking))
    announcement = arp.request(arp.HARDWARE_ETHERNET, arp.PROTOCOL_IPV4, NEW, "10.0.0.2",
                               "10.0.0.2")
    assert mode.unwrap(ethernet_arp(NEW, announcement)).drop == payload.ARP_IGNORED
    assert mode.peer_mac == NEW
    assert mode.unwrap(OURS + THEIRS + b"\x08\x00" + bytes([0x45]) + bytes(19)).packet
    assert mode.peer_mac == THEIRS


def test_the_default_mac_is_stable_unicast_and_locally_administered() -> None:
    mac = payload.derived_mac("lb0", "10.0.0.1/24")
    assert mac == payload.derived_mac("lb0", "10.0.0.1/24") != payload.derived_mac("lb1",
                                                                                   "10.0.0.1/24")
    assert len(mac) == 6 and mac[0] & 0x03 == 0x02
