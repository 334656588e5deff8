"""Fragmentation in a multipoint tunnel (docs/multipoint.md): each peer's stack has a fragment
layer of its own over its port, so a large packet goes out in fragments to its peer's station
only, and fragments of two peers that arrive interleaved, with the same packet ids, are each
reassembled from their own peer's pieces; the fragment layer passes the encrypt layer's check
on to the port (a peer roams on a whole frame)."""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import replace

from linkbridge.datapath.fragmenting import FragmentingEndpoint
from linkbridge.datapath.multipoint import PeerPort, PeerRouter
from linkbridge.datapath.pipeline import TunDevice, build, validate
from linkbridge.testing import MemoryEndpoint
from linkbridge.wire.fragment import Fragmenter
from linkbridge.wire.frames import Layer
from linkbridge.wire.peers import parse_peer
from tests.helpers.ip_packets import UDP, ip_packet
from tests.unit.test_multipoint import B, C, Stations, multipoint

B_STATION, C_STATION = "127.0.0.1:5002", "127.0.0.1:5003"
LINK_MTU = 500


def large(source: str, destination: str, size: int = 1300) -> bytes:
    return ip_packet(4, UDP, bytes(range(256)) * (size // 256),
                     src=bytes(map(int, source.split("."))),
                     dst=bytes(map(int, destination.split("."))))


def fragmenting_router(link: Stations) -> tuple[PeerRouter, int]:
    link.mtu = LINK_MTU
    plan = validate(replace(multipoint(B, C, link=link), above=TunDevice(1400)))
    assert plan.fragment_frame is not None and Layer.FRAGMENT in plan.layers
    with contextlib.ExitStack() as stack:
        routed = build(plan, stack, MemoryEndpoint("tun")).link_side  # type: ignore[arg-type]
    assert isinstance(routed, PeerRouter)
    return routed, plan.fragment_frame


def test_a_large_packet_goes_in_fragments_to_its_peer_only() -> None:
    link = Stations()
    routed, frame = fragmenting_router(link)
    routed.send(large("198.19.0.1", "198.19.3.7"))
    assert len(link.sent) == 3 and {to for to, _frame in link.sent} == {C_STATION}
    assert all(len(sent) <= frame <= LINK_MTU for _to, sent in link.sent)
    link.sent.clear()
    routed.send(large("198.19.0.1", "224.0.0.251"))  # a multicast: fragmented per peer
    assert Counter(to for to, _frame in link.sent) == {B_STATION: 3, C_STATION: 3}


def test_two_peers_fragments_with_the_same_ids_interleaved_are_reassembled_apart() -> None:
    link = Stations()
    routed, frame = fragmenting_router(link)
    from_b, from_c = large("198.19.2.5", "198.19.0.1"), large("198.19.3.5", "198.19.0.1", 1100)
    dropped: list[str] = []
    pieces = {station: Fragmenter(frame, dropped.append, first_id=7).split(packet)
              for station, packet in ((B_STATION, from_b), (C_STATION, from_c))}
    assert len(pieces[B_STATION]) == 3 and len(pieces[C_STATION]) == 3
    link.arriving = [(station, fragments[index]) for index in (0, 1, 2)
                     for station, fragments in pieces.items()]
    assert routed.receive(0) == [from_b, from_c]
    assert not routed.counters.drops and not dropped
    peers = routed.counters.as_dict()["peers"]
    assert isinstance(peers, dict)
    assert all(peers[name]["rx_packets"] == 1 and not peers[name]["drops"] for name in "bc")


def test_the_fragment_layer_passes_the_encrypt_layers_check_to_the_port() -> None:
    port = PeerPort(Stations(), parse_peer(B))
    layer = FragmentingEndpoint(port, 200)

    def check(frame: bytes) -> bool:
        return frame == b"b"

    layer.vouch_with(check)
    assert port.vouch is check
    FragmentingEndpoint(MemoryEndpoint("x"), 200).vouch_with(check)  # nothing to pass it to
