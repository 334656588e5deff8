"""Roaming on a multipoint link (docs/multipoint.md, "Roaming"): a channel vouches only for
fresh authentic transport data; the router moves a peer's station to a stranger's address
only for a frame its peer's session vouches for (never for a forged frame, a replay or a copy
racing its original), keeps the rest of the batch with it, and checks strangers at a bounded
rate; without encryption (no check) nothing roams."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from linkbridge.datapath.encrypting import EncryptingEndpoint
from linkbridge.datapath.endpoint import STRANGER, RoamingLink, Vouching
from linkbridge.datapath.multipoint import PeerPort, PeerRouter, peer_router
from linkbridge.datapath.roaming import ROAM_BURST, ROAM_INITIATIONS, ROAM_PER_SECOND, Roamer
from linkbridge.wire import drops
from linkbridge.wire.frames import (
    EXTENSION_BYTE,
    HANDSHAKE_INITIATION,
    HANDSHAKE_RESPONSE,
    frame_byte,
    type_nibble,
)
from linkbridge.wire.noise import public_bytes
from linkbridge.wire.peers import PeerTable, parse_peer
from linkbridge.wire.secure import StaticKeys
from tests.helpers.ip_packets import between
from tests.unit.test_multipoint import B, C, Stations
from tests.unit.test_secure import TIMERS, Pair, Side, packet

B_STATION, C_STATION = "127.0.0.1:5002", "127.0.0.1:5003"
NEW = "127.0.0.1:6002"  # where b roams to


def test_a_channel_vouches_only_for_fresh_authentic_transport_data() -> None:
    pair = Pair()
    pair.start()
    (frame,) = pair.a.seal(packet(1), pair.now)
    b = pair.b.channel
    assert b.vouches(frame, pair.now) and b.vouches(frame, pair.now)  # it changes nothing
    flipped = frame[:-1] + bytes([frame[-1] ^ 1])
    assert not b.vouches(flipped, pair.now)
    assert not b.vouches(frame[:10], pair.now)
    assert not b.vouches(packet(2), pair.now)  # plain IP
    assert not b.vouches(bytes([EXTENSION_BYTE, 4]) + bytes(40), pair.now)
    assert not pair.b.drops  # nothing counted
    assert pair.deliver(pair.b, frame) == packet(1)
    assert not b.vouches(frame, pair.now)  # a replay now
    (later,) = pair.a.seal(packet(3), pair.now)
    assert not pair.a.channel.vouches(later, pair.now)  # another direction's keys
    assert not b.vouches(later, pair.now + TIMERS.reject_after)  # the session is over
    assert b.vouches(later, pair.now)


def test_a_channel_vouches_for_a_fresh_initiation_from_its_peers_key_only() -> None:
    pair = Pair()
    (initiation,) = pair.a.start(pair.now)
    b = pair.b.channel
    assert b.vouches(initiation, pair.now) and b.vouches(initiation, pair.now)
    flipped = initiation[:40] + bytes([initiation[40] ^ 1]) + initiation[41:]
    assert not b.vouches(flipped, pair.now) and not b.vouches(initiation[:-1], pair.now)
    stranger = Side(X25519PrivateKey.generate(), pair.keys[1], seed=9)  # made for b's key
    (other,) = stranger.start(pair.now)
    assert not b.vouches(other, pair.now)
    assert not pair.b.drops
    pair.deliver(pair.b, initiation)  # b answers it: the same one is a replay now
    assert [type_nibble(frame[0]) for _to, frame in pair.wire] == [HANDSHAKE_RESPONSE]
    assert not b.vouches(initiation, pair.now)


def test_the_encrypt_layer_over_a_peers_port_vouches_for_it() -> None:
    stations = Stations()
    port = PeerPort(stations, parse_peer(B))
    assert isinstance(port, Vouching) and port.vouch is None
    keys = [X25519PrivateKey.generate() for _ in range(2)]
    layer = EncryptingEndpoint(port, StaticKeys(keys[0], public_bytes(keys[1])), TIMERS)
    assert port.vouch == layer.vouches
    assert not layer.vouches(packet(1))  # no session yet


class RoamingStations(Stations):
    """Stations that may move: `arrive(source, frame)` names the frame by the station at
    `source` (each station starts at its own name), by the mark after let_roam(), or else
    counts it as the link's drop."""

    def __init__(self) -> None:
        super().__init__()
        self.at: dict[str, str] = {}  # station -> its address now
        self.mark: str | None = None
        self.moves: list[tuple[str, str]] = []

    def set_stations(self, stations: list[str]) -> None:  # type: ignore[override]
        super().set_stations(stations)
        self.at = {station: station for station in stations}

    def let_roam(self, mark: str) -> None:
        self.mark = mark

    def move(self, station: str, stranger: str) -> None:
        self.moves.append((station, stranger))
        self.at[station] = stranger.removeprefix(STRANGER)

    def send_to(self, station: str, frame: bytes) -> None:
        self.sent.append((self.at[station], frame))

    def arrive(self, source: str, frame: bytes) -> None:
        station = next((name for name, address in self.at.items() if address == source), None)
        if station is not None:
            self.arriving.append((station, frame))
        elif self.mark is not None:
            self.arriving.append((self.mark + source, frame))
        else:
            self.counters.drop("unknown_station")


FROM_B = [between(f"198.19.2.{n}", "198.19.0.1") for n in range(1, 5)]


def roaming_router(checks: dict[str, Callable[[bytes], bool]] | None = None
                   ) -> tuple[PeerRouter, RoamingStations, list[bytes]]:
    """A router over roaming stations b and c; each peer's port gets `checks[name]` as an
    encrypt layer would give it (the default: b's session vouches for FROM_B, c's for
    nothing). The frames b's check was asked about are listed."""
    asked: list[bytes] = []

    def b_vouches(frame: bytes) -> bool:
        asked.append(frame)
        return frame in FROM_B

    if checks is None:
        checks = {"b": b_vouches, "c": lambda frame: False}
    table = PeerTable([parse_peer(B), parse_peer(C)])
    link = RoamingStations()
    link.set_stations([station for peer in table.peers for station in peer.stations])

    def upper(port: PeerPort, _undo: contextlib.ExitStack) -> PeerPort:
        if port.name in checks:
            port.vouch_with(checks[port.name])
        return port

    return peer_router(link, table, upper), link, asked


def test_a_frame_the_peers_session_vouches_for_moves_its_station() -> None:
    routed, link, asked = roaming_router()
    assert isinstance(link, RoamingLink) and link.mark == STRANGER
    link.arrive(NEW, FROM_B[0])
    link.arrive(NEW, FROM_B[1])  # the rest of the batch goes with it, unasked
    assert routed.receive(0) == FROM_B[:2]
    assert link.moves == [(B_STATION, STRANGER + NEW)] and asked == [FROM_B[0]]
    routed.send(between("198.19.0.1", "198.19.2.5"))  # replies follow b
    routed.send(between("198.19.0.1", "198.19.3.5"))
    assert [to for to, _frame in link.sent] == [NEW, C_STATION]
    link.arrive(NEW, FROM_B[2])  # b's station now: no check
    link.arrive(B_STATION, FROM_B[3])  # its old address is a stranger: b roams back
    assert routed.receive(0) == FROM_B[2:]
    assert link.moves[1:] == [(B_STATION, STRANGER + B_STATION)] and not routed.counters.drops


def test_a_frame_no_session_vouches_for_moves_nothing() -> None:
    routed, link, _asked = roaming_router()
    forged = between("198.19.2.99", "198.19.0.1")
    link.arrive(NEW, forged)
    link.arrive("127.0.0.1:7000", b"\x00")
    assert routed.receive(0) == []
    assert routed.counters.drops == {drops.ROAM_REFUSED: 2} and not link.moves
    routed.send(between("198.19.0.1", "198.19.2.5"))
    assert link.sent[0][0] == B_STATION


def test_a_copy_racing_its_original_moves_nothing() -> None:
    """b's frame and a replay of it from a stranger in one batch, before the original was
    opened (a session vouches for both): the copy is refused."""
    routed, link, asked = roaming_router()
    link.arrive(B_STATION, FROM_B[0])
    link.arrive(NEW, FROM_B[0])
    assert routed.receive(0) == [FROM_B[0]]
    assert routed.counters.drops == {drops.ROAM_REFUSED: 1} and not link.moves and not asked


def test_without_encryption_nothing_roams() -> None:
    routed, link, _asked = roaming_router(checks={})
    assert link.mark is None  # the link keeps counting strangers itself
    link.arrive(NEW, FROM_B[0])
    assert routed.receive(0) == [] and link.counters.drops == {"unknown_station": 1}
    plain = PeerRouter(Stations(), PeerTable([parse_peer(B)]), lambda port, _undo: port)
    plain.link.arriving.append((STRANGER + NEW, FROM_B[0]))  # type: ignore[attr-defined]
    assert plain.receive(0) == [] and plain.counters.drops == {drops.FILTERED: 1}


def test_strangers_are_checked_at_a_bounded_rate() -> None:
    link, counted, now = RoamingStations(), list[str](), [0.0]
    link.set_stations([B_STATION])
    roamer = Roamer(link, {B_STATION: lambda frame: frame == b"b"}, counted.append,
                    lambda: now[0])
    flood = [(STRANGER + f"127.0.0.1:{7000 + n}", bytes([n])) for n in range(40)]
    for source, frame in flood:
        assert roamer.station_of(source, frame, flood) is None
    assert counted.count(drops.ROAM_REFUSED) == ROAM_BURST
    assert counted.count(drops.ROAM_RATE) == 40 - ROAM_BURST
    assert roamer.station_of(STRANGER + NEW, b"b", [(STRANGER + NEW, b"b")]) is None
    now[0] += 1 / ROAM_PER_SECOND  # one more check allowed
    assert roamer.station_of(STRANGER + NEW, b"b", [(STRANGER + NEW, b"b")]) == B_STATION
    assert link.moves == [(B_STATION, STRANGER + NEW)]


def test_initiations_from_strangers_are_checked_at_a_lower_rate() -> None:
    link, counted = RoamingStations(), list[str]()
    link.set_stations([B_STATION])
    asked: list[bytes] = []

    def refuses(frame: bytes) -> bool:
        asked.append(frame)
        return False

    roamer = Roamer(link, {B_STATION: refuses}, counted.append, lambda: 0.0)
    initiations = [(STRANGER + f"127.0.0.1:{7000 + n}", bytes([frame_byte(HANDSHAKE_INITIATION),
                                                             n])) for n in range(5)]
    for source, frame in initiations:
        assert roamer.station_of(source, frame, initiations) is None
    assert len(asked) == ROAM_INITIATIONS and counted.count(drops.ROAM_RATE) == 5 - len(asked)
