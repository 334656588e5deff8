"""What a multipoint peer's port passes to the stack above it (docs/multipoint.md): over a
link whose stations are return paths (udp:) it is a ReturnPath, so that each peer's encrypt
layer answers a handshake flood with cookie replies to its station's address, and the real
peer gets its session through the flood (docs/security.md, "Handshakes under attack"); it
tells each peer's VJ decompressor of every frame the link lost."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from linkbridge.datapath.compressing import CompressingEndpoint
from linkbridge.datapath.encrypting import EncryptingEndpoint
from linkbridge.datapath.endpoint import LossReporter, ReturnPath
from linkbridge.datapath.multipoint import OneStation, PeerPort, PeerRouter, peer_router
from linkbridge.testing import MemoryEndpoint
from linkbridge.wire import drops, frames
from linkbridge.wire.compress import codec_pair
from linkbridge.wire.noise import public_bytes
from linkbridge.wire.peers import PeerTable, parse_peer
from linkbridge.wire.secure import INITIATION_SIZE, StaticKeys
from tests.helpers.ip_packets import between, tcp
from tests.unit.test_multipoint import B, C, Stations
from tests.unit.test_roaming import B_STATION, C_STATION, NEW, RoamingStations
from tests.unit.test_secure import TIMERS, Side

FLOOD = 20  # initiations from strangers at each station: 5 pass the burst, 15 get cookies


class ReturnStations(RoamingStations):
    """Stations that are return paths, as udp:'s (StationReturnPaths)."""

    def station_address(self, station: str) -> str:
        return self.at[station]


def key(seed: int) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(random.Random(seed).randbytes(32))


HUB, PEER_KEYS = key(1), {"b": key(2), "c": key(3)}


def hub(link: Stations) -> tuple[PeerRouter, dict[str, EncryptingEndpoint]]:
    """A hub with peers b and c over `link`, each with an encrypt layer of its own, driven
    by hand (no handshake thread: the test calls handshake_step())."""
    table = PeerTable([parse_peer(B), parse_peer(C)])
    link.set_stations([station for peer in table.peers for station in peer.stations])
    rng = random.Random(9)
    layers: dict[str, EncryptingEndpoint] = {}

    def upper(port: PeerPort, _undo: contextlib.ExitStack) -> EncryptingEndpoint:
        keys = StaticKeys(HUB, public_bytes(PEER_KEYS[port.name]))
        layers[port.name] = EncryptingEndpoint(port, keys, TIMERS, clock=lambda: 0.0,
                                               random=rng.randbytes,
                                               wall_clock=lambda: 1_700_000_000 * 10**9)
        return layers[port.name]

    return peer_router(link, table, upper), layers


def flood(link: Stations, station: str, seed: int) -> None:
    """FLOOD fresh initiations with a valid mac1 for the hub, from keys it does not know:
    what anyone who knows the hub's public key can send with the station's address."""
    for n in range(FLOOD):
        link.arriving.append((station, Side(key(seed + n), HUB, seed + n).start(0.0)[0]))


def cookies_to(link: Stations, address: str) -> list[bytes]:
    return [frame for to, frame in link.sent
            if to == address and frame[:2] == bytes((frames.EXTENSION_BYTE,
                                                     frames.COOKIE_REPLY))]


def test_each_peers_port_on_udp_stations_answers_a_flood_with_cookies_to_its_address() -> None:
    link = ReturnStations()
    routed, layers = hub(link)
    for name, station in (("b", B_STATION), ("c", C_STATION)):
        port = routed.view.stacks[name].port
        assert isinstance(port, ReturnPath) and port.return_address() == station
    flood(link, B_STATION, 100)
    flood(link, C_STATION, 200)
    assert routed.receive(0) == []
    for name, station in (("b", B_STATION), ("c", C_STATION)):
        assert layers[name].counters.drops[drops.HANDSHAKE_COOKIE] == FLOOD - 5
        assert len(cookies_to(link, station)) == FLOOD - 5
    link.move(B_STATION, "?" + NEW)  # b roams: its cookies go to its new address
    assert routed.view.stacks["b"].port.return_address() == NEW


def test_the_real_peers_get_their_sessions_through_the_flood_by_their_cookies() -> None:
    """Both peers' initiations come over the rate: each gets a cookie reply, resends with
    its mac2 at once, and that initiation, in a bucket of its own, makes a session."""
    link = ReturnStations()
    routed, layers = hub(link)
    flood(link, B_STATION, 100)
    flood(link, C_STATION, 200)
    routed.receive(0)
    for name, station in (("b", B_STATION), ("c", C_STATION)):
        peer = Side(PEER_KEYS[name], HUB, 7)
        link.sent.clear()
        link.arriving += [(station, frame) for frame in peer.start(0.0)]
        routed.receive(0)
        resent = [answer for reply in cookies_to(link, station)
                  for answer in peer.open(reply, 0.0)[1]]
        assert [len(frame) for frame in resent] == [INITIATION_SIZE + 16]  # with mac2
        link.sent.clear()
        link.arriving += [(station, frame) for frame in resent]
        routed.receive(0)
        layers[name].handshake_step()  # the flood's jobs fail, the peer's answers
        for to, frame in link.sent:
            assert to == station
            assert peer.open(frame, 0.0)[0] is None  # the response: a session
        index = 2 if name == "b" else 3
        sent = between(f"198.19.{index}.1", "198.19.0.1")
        link.arriving += [(station, frame) for frame in peer.seal(sent, 0.0)]
        assert routed.receive(0) == [sent]
        assert layers[name].channel.handshakes == 1
        assert layers[name].counters.drops[drops.HANDSHAKE_PEER] == 5  # the flood's burst


def test_without_station_return_paths_a_flood_is_only_rate_limited() -> None:
    """A broadcast medium's stations (radio, KISS) prove no return path: no cookie replies,
    the flood over the rate is dropped."""
    link = Stations()
    routed, layers = hub(link)
    assert not isinstance(routed.view.stacks["b"].port, ReturnPath)
    flood(link, B_STATION, 100)
    routed.receive(0)
    assert layers["b"].counters.drops[drops.HANDSHAKE_RATE] == FLOOD - 5
    assert not link.sent


class LossyStations(Stations):
    """Stations that report loss: `arriving` may hold a reason (str) where a frame was lost,
    told to the listeners as receive_from() reaches it."""

    def __init__(self) -> None:
        super().__init__()
        self.listeners: list[Callable[[str], None]] = []

    def on_loss(self, listener: Callable[[str], None]) -> None:
        self.listeners.append(listener)

    def receive_from(self, timeout: float) -> list[tuple[str, bytes]]:
        arrived, self.arriving = self.arriving, []
        for item in arrived:
            if isinstance(item, str):
                for listener in self.listeners:
                    listener(item)
        return [item for item in arrived if not isinstance(item, str)]


def test_a_frame_the_link_lost_makes_every_peers_vj_decompressor_toss() -> None:
    """The link cannot say whose a lost frame was: every peer's VJ decompressor hears of it
    and tosses compressed frames until one names its connection (TCP resends it whole)."""
    link = LossyStations()
    table = PeerTable([parse_peer(B), parse_peer(C)])
    link.set_stations([station for peer in table.peers for station in peer.stations])
    routed = peer_router(link, table, lambda port, _undo: CompressingEndpoint(port, "vj"))
    assert isinstance(routed.view.stacks["b"].port, LossReporter)
    senders = {station: codec_pair("vj", lambda _reason: None, first_gen=0)[0]
               for station in (B_STATION, C_STATION)}
    flows = {B_STATION: bytes([198, 19, 2, 1]), C_STATION: bytes([198, 19, 3, 1])}

    def arrive(seq: int) -> list[bytes]:
        packets = []
        for station, source in flows.items():
            packet = tcp(seq=seq, src=source, dst=bytes([198, 19, 0, 1]))
            packets.append(packet)
            link.arriving.append((station, senders[station].compress(packet)))
        return packets

    first = arrive(1000)  # full headers: each sets up its peer's context
    assert routed.receive(0) == first
    second = arrive(1100)  # compressed: each decodes against its peer's context
    assert routed.receive(0) == second
    link.arriving.append("kiss_crc")  # type: ignore[arg-type]  # a frame lost: whose?
    arrive(1200)  # compressed, without the connection number: tossed at both peers
    assert routed.receive(0) == []
    for name in ("b", "c"):
        assert routed.view.stacks[name].top.counters.drops == {drops.COMPRESS_TOSSED: 1}


def test_a_link_of_one_peer_passes_its_loss_reports_on() -> None:
    heard: list[str] = []

    class Reporting(MemoryEndpoint):
        def on_loss(self, listener: Callable[[str], None]) -> None:
            listener("told")

    OneStation(Reporting("one")).on_loss(heard.append)
    OneStation(MemoryEndpoint("two")).on_loss(heard.append)  # reports nothing: nothing
    assert heard == ["told"]
