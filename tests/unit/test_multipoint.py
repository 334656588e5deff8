"""Multipoint tunnels (docs/multipoint.md): the rules validate() applies to --peer, the
PeerRouter over an addressed link (routing, groups, the source check, per-peer counters), the
command line and the config file's peer tables, each bad input one line."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from linkbridge.cli import main as cli
from linkbridge.cli.installed import InstalledPlugins
from linkbridge.cli.options import UpOptions
from linkbridge.cli.parser import build_parser
from linkbridge.cli.up import plan_up
from linkbridge.datapath.compressing import CompressingEndpoint
from linkbridge.datapath.endpoint import AddressedLink, Pollable
from linkbridge.datapath.multipoint import OneStation, PeerRouter, peer_router
from linkbridge.datapath.pipeline import (
    LinkBelow,
    Lower,
    Pipeline,
    TunDevice,
    Upper,
    build,
    peer_upper,
    validate,
)
from linkbridge.errors import ConfigError
from linkbridge.ops.config import subparser
from linkbridge.ops.keys import new_private_key, public_key_of
from linkbridge.ops.status_data import parse_tunnel
from linkbridge.ops.status_format import compression_lines, format_json, format_table
from linkbridge.plugin.registry import get_plugin_manager
from linkbridge.testing import MemoryEndpoint, MemoryLink
from linkbridge.wire import drops
from linkbridge.wire.frames import KEEPALIVE_FRAME, Layer
from linkbridge.wire.peers import PeerTable, parse_peer
from linkbridge.wire.stack import Compress, Fragment, Offload
from tests.helpers.ip_packets import between, tcp
from tests.unit.test_config import parse
from tests.unit.test_keys import key_file
from tests.unit.test_pipeline import encrypts

B = "b,allowed=198.19.2.0/24,endpoint=127.0.0.1:5002"
C = "c,allowed=198.19.3.0/24,allowed=fd00:3::/64,endpoint=127.0.0.1:5003"


class Stations(MemoryEndpoint):
    """An in-memory addressed link: records what it sends to whom, returns what `arrive()`
    queued with its station."""

    mtu: int | None = None
    foreign_peer: str | None = None

    def __init__(self) -> None:
        super().__init__("stations")
        self.stations: list[str] = []
        self.sent: list[tuple[str, bytes]] = []
        self.arriving: list[tuple[str, bytes]] = []

    def open(self) -> None:
        """Nothing to open."""

    def set_stations(self, stations: Sequence[str]) -> None:
        self.stations = list(stations)

    def send_to(self, station: str, frame: bytes) -> None:
        self.sent.append((station, frame))

    def send_all(self, frame: bytes) -> None:
        self.sent += [(station, frame) for station in self.stations]

    def receive_from(self, timeout: float) -> list[tuple[str, bytes]]:
        arrived, self.arriving = self.arriving, []
        return arrived


def sent_to(routed: PeerRouter, name: str) -> object:
    """The packets the router sent to peer `name`, as status shows them."""
    peers = routed.counters.as_dict()["peers"]
    assert isinstance(peers, dict)
    return peers[name]["tx_packets"]


def router(*peers: str) -> tuple[PeerRouter, Stations]:
    table = PeerTable(map(parse_peer, peers))
    link = Stations()
    link.set_stations([station for peer in table.peers for station in peer.stations])
    return PeerRouter(link, table), link


def test_each_packet_goes_to_its_peers_station() -> None:
    routed, link = router(B, C)
    assert isinstance(link, AddressedLink)
    to_c, to_b6 = between("198.19.0.1", "198.19.3.7"), between("fd00::1", "fd00:3::9")
    routed.send(to_c)
    routed.send(to_b6)
    routed.send(between("198.19.0.1", "10.1.1.1"))
    assert link.sent == [("127.0.0.1:5003", to_c), ("127.0.0.1:5003", to_b6)]
    assert routed.counters.drops == {drops.NO_PEER: 1}
    assert (routed.counters.tx_packets, sent_to(routed, "c"), sent_to(routed, "b")) == (2, 2, 0)


def test_broadcast_and_multicast_go_to_every_station() -> None:
    routed, link = router(B, C)
    for packet in (between("198.19.0.1", "224.0.0.251"), between("198.19.0.1", "255.255.255.255"),
                   between("fd00::1", "ff02::1")):
        link.sent.clear()
        routed.send(packet)
        assert link.sent == [("127.0.0.1:5002", packet), ("127.0.0.1:5003", packet)]
    assert sent_to(routed, "b") == sent_to(routed, "c") == 3


def test_a_keepalive_tick_reaches_only_the_peers_sent_nothing_since_the_last() -> None:
    routed, link = router(B, C)
    routed.send(KEEPALIVE_FRAME)  # nothing sent yet: both
    assert link.sent == [("127.0.0.1:5002", KEEPALIVE_FRAME), ("127.0.0.1:5003", KEEPALIVE_FRAME)]
    link.sent.clear()
    to_c = between("198.19.0.1", "198.19.3.7")
    routed.send(to_c)
    routed.send(KEEPALIVE_FRAME)  # c had traffic since the last tick: b only
    assert link.sent == [("127.0.0.1:5003", to_c), ("127.0.0.1:5002", KEEPALIVE_FRAME)]
    link.sent.clear()
    routed.send(KEEPALIVE_FRAME)  # c's traffic was before the last tick, b's keepalive too
    assert link.sent == [("127.0.0.1:5002", KEEPALIVE_FRAME), ("127.0.0.1:5003", KEEPALIVE_FRAME)]
    assert routed.keepalives == {"b": 3, "c": 2}
    assert routed.counters.tx_packets == 1  # keepalives are not the tunnel's packets


def test_a_peer_speaking_for_another_is_dropped_and_counted_per_peer() -> None:
    routed, link = router(B, C)
    honest, forged = between("198.19.2.5", "198.19.0.1"), between("198.19.3.5", "198.19.0.1")
    link.arriving = [("127.0.0.1:5002", honest), ("127.0.0.1:5002", forged),
                     ("127.0.0.1:5003", forged), ("127.0.0.1:5003", b"\x00")]
    assert routed.receive(0) == [honest, forged, b"\x00"]
    document = routed.counters.as_dict()
    assert document["drops"] == {drops.SOURCE_NOT_ALLOWED: 1}
    peers = document["peers"]
    assert isinstance(peers, dict)
    assert peers["b"]["drops"] == {drops.SOURCE_NOT_ALLOWED: 1}
    assert (peers["b"]["rx_packets"], peers["c"]["rx_packets"], peers["c"]["drops"]) == (2, 2, {})
    assert routed.counters.rx_packets == 3  # what went up
    assert "frames" in document


class PollableStations(Stations):
    def fileno(self) -> int:
        return 7


def test_the_router_joins_the_shared_poll_when_its_link_does() -> None:
    table = PeerTable([parse_peer(B)])
    assert isinstance(peer_router(PollableStations(), table), Pollable)
    assert peer_router(PollableStations(), table).fileno() == 7  # type: ignore[attr-defined]
    assert not isinstance(peer_router(Stations(), table), Pollable)
    assert isinstance(peer_router(MemoryLink("x"), table).link, OneStation)


def test_a_link_without_stations_carries_one_peer() -> None:
    link = MemoryLink("x")
    routed = PeerRouter(OneStation(link), PeerTable([parse_peer("b,allowed=198.19.2.0/24")]))
    echoed = between("198.19.2.9", "198.19.2.1")  # memory: echoes, so it comes back from b
    routed.send(echoed)
    assert routed.receive(0) == [echoed]
    routed.send(between("198.19.0.1", "198.19.2.9"))  # comes back with a source not b's
    assert routed.receive(0) == [] and routed.counters.drops == {drops.SOURCE_NOT_ALLOWED: 1}
    assert link.counters.tx_packets == 2


class Medium:
    """Stations that reach each other in memory: what one sends to a station arrives there
    with the sender's station."""

    def __init__(self) -> None:
        self.links: dict[str, Stations] = {}

    def join(self, station: str) -> Stations:
        medium, link = self, Stations()

        def send_to(to: str, frame: bytes) -> None:
            medium.links[to].arriving.append((station, frame))

        link.send_to = send_to  # type: ignore[method-assign]
        self.links[station] = link
        return link


MESH = {name: f"198.19.{index}.0/24" for index, name in enumerate("abc", 1)}


def compressing_mesh() -> dict[str, PeerRouter]:
    """Stations a, b and c, each with the others as peers, each peer's packets compressed
    (`--compress auto`) with contexts of its own."""
    medium, routers = Medium(), {}
    for name in MESH:
        link = medium.join(name)
        peers = [parse_peer(f"{other},allowed={prefix},endpoint={other}")
                 for other, prefix in MESH.items() if other != name]
        link.set_stations([other for other in MESH if other != name])
        routers[name] = peer_router(link, PeerTable(peers),
                                    lambda port, _undo: CompressingEndpoint(port, "auto"))
    return routers


def test_each_peer_has_its_own_compression_contexts() -> None:
    routers = compressing_mesh()
    sent = {to: [tcp(seq=1000 + 100 * n, src=bytes([198, 19, 1, 1]),
                     dst=bytes([198, 19, index, 1])) for n in range(5)]
            for to, index in (("b", 2), ("c", 3))}
    for n in range(5):
        for packets in sent.values():
            routers["a"].send(packets[n])
    group = between("198.19.1.1", "224.0.0.9")
    routers["a"].send(group)  # each peer gets it through its own compressor
    assert routers["b"].receive(0) == [*sent["b"], group]
    assert routers["c"].receive(0) == [*sent["c"], group]
    peers = routers["a"].counters.as_dict()["peers"]
    assert isinstance(peers, dict)
    for name in ("b", "c"):
        tx = peers[name]["compress"]["tx"]
        assert (tx["packets"], tx["full"], tx["compressed"]) == (6, 1, 4), tx  # and the group
        assert peers[name]["frames"]["tx_packets"] == 6  # the peer's port
    routers["b"].send(between("198.19.3.5", "198.19.1.1"))  # b speaks for c, compressed
    assert routers["a"].receive(0) == []
    assert routers["a"].counters.drops == {drops.SOURCE_NOT_ALLOWED: 1}


def multipoint(*peers: str, link: object = None, **upper: object) -> Pipeline:
    return Pipeline(above=TunDevice(), upper=Upper(**upper),  # type: ignore[arg-type]
                    lower=Lower(LinkBelow(link or MemoryLink("x")), Fragment("auto")),  # type: ignore[arg-type]
                    peers=PeerTable(map(parse_peer, peers)))


def test_validate_gives_the_stations_and_builds_the_router() -> None:
    link = Stations()
    plan = validate(multipoint(B, C, link=link, offload=Offload("auto")))
    assert link.stations == ["127.0.0.1:5002", "127.0.0.1:5003"]
    assert (plan.offload_frame, plan.fragment_frame) == (None, None)
    with contextlib.ExitStack() as stack:
        opened = build(plan, stack, MemoryEndpoint("tun"))  # type: ignore[arg-type]
        assert isinstance(opened.link_side, PeerRouter) and opened.link_side.link is link
    plan = validate(multipoint(B, C, link=Stations(), compress=Compress("auto")))
    assert Layer.COMPRESS in plan.layers
    with contextlib.ExitStack() as stack:
        routed = build(plan, stack, MemoryEndpoint("tun")).link_side  # type: ignore[arg-type]
        assert isinstance(routed, PeerRouter)
        peers = routed.counters.as_dict()["peers"]
        assert isinstance(peers, dict) and peers["b"]["compress"]["mode"] == "auto"


@pytest.mark.parametrize(("pipeline", "message"), [
    (lambda: multipoint(B, C), "link memory:x has no station addresses: it carries one peer"),
    (lambda: multipoint(B), "link memory:x has no station addresses"),
    (lambda: multipoint("b,allowed=10.0.0.0/8", offload=Offload("on")),
     "--peer with --offload on is not supported yet"),
    (lambda: multipoint("b,allowed=10.0.0.0/8", encrypt=encrypts()[0]),
     r"with encryption every peer needs its public key \(key=\)"),
])
def test_what_multipoint_refuses_yet(pipeline: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate(pipeline())  # type: ignore[operator]


def options(*argv: str) -> UpOptions:
    return UpOptions.from_args(build_parser().parse_args(["up", *argv]))


PLUGINS = InstalledPlugins(get_plugin_manager)


def test_the_command_line_plans_a_multipoint_tunnel_over_udp() -> None:
    planned = plan_up(options("--link", "udp:?bind=127.0.0.1:5001", "--peer", B, "--peer", C,
                              "--address", "198.19.0.1/16"), PLUGINS)
    assert [str(net) for net in planned.spec.remotes] == [
        "198.19.2.0/24", "198.19.3.0/24", "fd00:3::/64"]
    peers = planned.pipeline.description.peers
    assert peers is not None and [peer.name for peer in peers.peers] == ["b", "c"]
    assert peers.destinations(between("198.19.0.1", "198.19.255.255")) == peers.peers
    plain = plan_up(options("--link", "udp:127.0.0.1:9", "--remote", "10.0.0.1"), PLUGINS)
    assert plain.pipeline.description.peers is None  # --remote: one peer, as ever


@pytest.mark.parametrize(("argv", "message"), [
    (["--remote", "10.0.0.1", "--peer", B], "give --remote .* or --peer, not both"),
    (["--peer", "b,allowed=10.0.0.0/33"], "peer 'b': bad prefix '10.0.0.0/33'"),
    (["--peer", B, "--peer", B], "peer 'b' is given twice"),
    (["--peer", "b,endpoint=127.0.0.1:5002"], "peer 'b': no allowed= prefix"),
    (["--link", "udp:127.0.0.1:9", "--peer", B],
     r"link udp:127.0.0.1:9 names one peer: with --peer give udp: no target"),
    (["--link", "udp:", "--peer", B], "link udp: without a target .* needs bind=HOST:PORT"),
    (["--link", "udp:?bind=127.0.0.1:1", "--peer", "b,allowed=10.0.0.0/8,endpoint=b:1"],
     "link udp:: endpoint 'b:1': 'b' is not an IP address"),
    (["--rx", "1", "--tx", "2", "--peer", B], r"--peer needs a link \(--link\)"),
    (["--peer", "b,allowed=10.0.0.0/8"], r"peer 'b': give one endpoint= \(its station on udp:\), "
     "not 0"),
    (["--peer", B + ",endpoint=127.0.0.1:6"], "peer 'b': give one endpoint=.*, not 2"),
    (["--link", "udp:?bind=[::1]:1", "--peer", B],
     r"endpoint '127.0.0.1:5002' is not of the IP version of bind=\[::1\]:1"),
])
def test_bad_peers_on_the_command_line(argv: list[str], message: str) -> None:
    base = [] if {"--link", "--rx"} & set(argv) else ["--link", "udp:?bind=127.0.0.1:1"]
    with pytest.raises(ConfigError, match=message) as raised:
        plan_up(options(*base, *argv), PLUGINS)
    assert "\n" not in str(raised.value)


def test_each_peer_gets_its_own_keys(tmp_path: Path) -> None:
    private = key_file(tmp_path, "a.key", new_private_key())
    b, c = (public_key_of(new_private_key()) for _ in range(2))
    planned = plan_up(options("--link", "udp:?bind=127.0.0.1:5001", "--private-key", private,
                              "--peer", f"{B},key={b}", "--peer", f"{C},key={c}"), PLUGINS)
    pipeline = planned.pipeline.description
    assert Layer.ENCRYPT in planned.pipeline.layers
    keys = {name: peer_upper(pipeline, name).encrypt.keys  # type: ignore[union-attr]
            for name in ("b", "c")}
    assert keys["b"].peer_public == base64.b64decode(b)
    assert keys["c"].peer_public == base64.b64decode(c)
    assert keys["b"].private is keys["c"].private


def test_bad_keys_of_peers(tmp_path: Path) -> None:
    private = key_file(tmp_path, "a.key", new_private_key())
    b = public_key_of(new_private_key())
    udp = ("--link", "udp:?bind=127.0.0.1:5001")
    for argv, message in [
        (["--private-key", private, "--peer", B], r"peer 'b': no key= \(with --private-key"),
        (["--peer", f"{B},key={b}"], r"a peer's key= needs --private-key"),
        (["--private-key", private, "--peer-public-key", b, "--peer", f"{B},key={b}"],
         "with --peer, each peer's public key is its key=, not --peer-public-key"),
        (["--private-key", private, "--peer", f"{B},key=no!"], "peer 'b': key= is not base64"),
        (["--private-key", private, "--peer", f"{B},key={b}", "--peer", f"{C},key={b}"],
         r"two peers have the same key="),
    ]:
        with pytest.raises(ConfigError, match=message):
            plan_up(options(*udp, *argv), PLUGINS)


@pytest.mark.parametrize(("argv", "message"), [
    (["--link", "udp:?bind=127.0.0.1:1", "--peer", "b,allowed=x"], "peer 'b': bad prefix 'x'"),
    (["--backend", "fou", "--rx", "1", "--tx", "2", "--peer", B], "--peer need the tun backend"),
])
def test_a_bad_peer_exits_with_status_2(argv: list[str], message: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["up", *argv]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error


PEERS_FILE = """
link = "udp:?bind=127.0.0.1:5001"
[[peer]]
name = "b"
allowed = "198.19.2.0/24"
endpoint = "127.0.0.1:5002"
[[peer]]
name = "c"
allowed = ["198.19.3.0/24", "fd00:3::/64"]
endpoint = "127.0.0.1:5003"
"""


def test_peer_tables_in_the_config_file() -> None:
    up = subparser(build_parser(), "up")
    (args,) = parse(PEERS_FILE, up)
    assert args.peer == [B, C]
    (tunnel,) = parse("[[tunnel]]\n" + PEERS_FILE.replace("[[peer]]", "[[tunnel.peer]]"), up)
    assert tunnel.peer == [B, C]
    assert parse('peer = "' + B + '"\n', up)[0].peer == [B]  # the --peer text works too


@pytest.mark.parametrize(("table", "message"), [
    ('name = "b"\nallowed = "10.0.0.0/33"', r"peer\[0\]: peer 'b': bad prefix"),
    ('name = "b"', r"peer\[0\]: peer 'b': no allowed= prefix"),
    ('name = ["b", "c"]\nallowed = "10.0.0.0/8"', r"peer\[0\].name: expected a string, not"),
    ('name = "b"\nallowed = 3', r"peer\[0\].allowed: expected a string or a list of strings"),
    ('name = "b"\nallowed = "10.0.0.0/8"\nport = "1"', r"peer\[0\]: peer 'b': unknown key 'port'"),
])
def test_bad_peer_tables_name_their_path(table: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(f"[[peer]]\n{table}\n", subparser(build_parser(), "up"))


def test_status_shows_each_peer_in_the_table_and_the_json() -> None:
    routed, link = router(B, C)
    routed.send(between("198.19.0.1", "198.19.2.7"))
    link.arriving = [("127.0.0.1:5003", between("198.19.2.5", "198.19.0.1"))]
    routed.receive(0)
    served = json.loads(json.dumps({"device": "lb0", "pid": 7, "link_side": {
        "name": routed.name, **routed.counters.as_dict()}}))
    tunnel = parse_tunnel(served)
    assert [label for label, _side in tunnel.sides()] == ["tunnel", "link", "peer:b", "peer:c"]
    assert json.loads(format_json([tunnel]))[0]["link_side"]["peers"]["c"]["drops"] == {
        drops.SOURCE_NOT_ALLOWED: 1}
    rows = format_table([tunnel], now=0.0).splitlines()
    assert rows[3].split() == ["peer:b", "0", "0", "B", "1", "28", "B", "-"]
    assert rows[4].split() == ["peer:c", "1", "28", "B", "0", "0", "B", "source_not_allowed=1"]
    compressed = compressing_mesh()["a"]
    compressed.send(between("198.19.1.1", "198.19.2.1"))
    document = {"device": "lb1", "link_side": compressed.counters.as_dict()}
    assert compression_lines([parse_tunnel(json.loads(json.dumps(document)))]) == [
        "lb1 peer:b: compress auto: tx 0/1 compressed, 0 B of headers saved; "
        "rx 0/0 compressed, 0 B of headers saved",
        "lb1 peer:c: compress auto: tx 0/0 compressed, 0 B of headers saved; "
        "rx 0/0 compressed, 0 B of headers saved"]
    with pytest.raises(ValueError, match=r"link_side\.peers: expected an object"):
        parse_tunnel({"link_side": {"peers": []}})
