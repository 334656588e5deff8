"""Per-peer life of a multipoint tunnel (docs/multipoint.md): each peer's liveness from the
frames its station sent, what its hooks are told, `status` showing each peer's state, and the
router taking a new peer table while it runs (a reload): unchanged peers keep their stacks,
a removed one's is closed, an added one is reachable."""

from __future__ import annotations

import contextlib
import json

import pytest

from linkbridge.datapath.multipoint import PeerPort, PeerRouter
from linkbridge.errors import ConfigError
from linkbridge.ops.metrics import exposition
from linkbridge.ops.status_data import parse_tunnel
from linkbridge.ops.status_format import format_table
from linkbridge.tunnel.peerwatch import PeerWatch, peer_environment
from linkbridge.tunnel.session import peers_only
from linkbridge.wire.liveness import LinkState, Thresholds
from linkbridge.wire.peers import PeerTable, parse_peer
from tests.helpers.ip_packets import between
from tests.unit.test_multipoint import B, C, Stations, router

D = "d,allowed=198.19.4.0/24,endpoint=127.0.0.1:5004"
THRESHOLDS = Thresholds(stale_after=1.5, down_after=2.25)


def test_each_peer_is_up_stale_and_down_from_its_own_frames() -> None:
    routed, link = router(B, C)
    watch = PeerWatch(routed, THRESHOLDS)
    assert watch.observe(0.0) == []  # nothing heard: both down
    link.arriving = [("127.0.0.1:5002", between("198.19.2.5", "198.19.0.1"))]
    routed.receive(0)
    changes = watch.observe(0.5)
    assert [(peer.name, change.new) for peer, change in changes] == [("b", LinkState.UP)]
    link.arriving = [("127.0.0.1:5003", b"\x00")]  # c's keepalive
    routed.receive(0)
    assert [(peer.name, change.new) for peer, change in watch.observe(2.1)] == [
        ("b", LinkState.STALE), ("c", LinkState.UP)]
    assert [(peer.name, change.new) for peer, change in watch.observe(2.8)] == [
        ("b", LinkState.DOWN)]
    status = watch.status(3.0)
    assert status["b"]["state"] == "down" and status["c"]["state"] == "up"
    assert status["c"]["last_frame_s"] == pytest.approx(0.9)


def test_a_peer_hook_hears_the_peer_its_station_and_prefixes() -> None:
    peer = parse_peer("c,allowed=198.19.3.0/24,allowed=fd00:3::/64,endpoint=192.0.2.3:47400")
    assert peer_environment(peer, "down") == {
        "LINKBRIDGE_PEER": "c", "LINKBRIDGE_PEER_ENDPOINT": "192.0.2.3:47400",
        "LINKBRIDGE_PEER_ALLOWED": "198.19.3.0/24 fd00:3::/64", "LINKBRIDGE_PEER_STATE": "down"}


def c_heard() -> tuple[PeerRouter, PeerWatch]:
    """A router with peers b and c, and their liveness once a keepalive came from c."""
    routed, link = router(B, C)
    watch = PeerWatch(routed, THRESHOLDS)
    link.arriving = [("127.0.0.1:5003", b"\x00")]
    routed.receive(0)
    watch.observe(0.0)
    return routed, watch


def test_status_shows_each_peers_state() -> None:
    routed, watch = c_heard()
    document = json.loads(json.dumps({"device": "lb0", "pid": 7, "link_state": "up",
                                      "peer_states": watch.status(0.1),
                                      "link_side": {"name": routed.name,
                                                    **routed.counters.as_dict()}}))
    tunnel = parse_tunnel(document)
    rows = format_table([tunnel], now=0.0).splitlines()
    assert rows[3].split()[:2] == ["peer:b", "down"]
    assert rows[4].split()[:2] == ["peer:c", "up"]
    metrics = [line for line in exposition([tunnel]).splitlines()
               if line.startswith("linkbridge_peer_up")]
    assert metrics == ['linkbridge_peer_up{tunnel="lb0",pid="7",link="",side="peer:b"} 0',
                       'linkbridge_peer_up{tunnel="lb0",pid="7",link="",side="peer:c"} 1']


class Opened:
    """An upper stack opener that records which peers' stacks are open."""

    def __init__(self) -> None:
        self.open: set[str] = set()

    def __call__(self, port: PeerPort, undo: contextlib.ExitStack) -> PeerPort:
        self.open.add(port.name)
        undo.callback(self.open.discard, port.name)
        return port


def test_an_update_keeps_unchanged_peers_and_swaps_the_others() -> None:
    link, opened = Stations(), Opened()
    routed = PeerRouter(link, PeerTable(map(parse_peer, (B, C))), opened)
    ports = {name: stack.port for name, stack in routed.view.stacks.items()}
    routed.send(between("198.19.0.1", "198.19.2.7"))
    added, removed = routed.update(PeerTable(map(parse_peer, (B, D))))
    assert ([peer.name for peer in added], [peer.name for peer in removed]) == (["d"], ["c"])
    assert opened.open == {"b", "d"}  # c's stack closed
    assert routed.view.stacks["b"].port is ports["b"]  # b untouched: its counters go on
    assert routed.view.stacks["b"].port.counters.tx_packets == 1
    assert link.stations == ["127.0.0.1:5002", "127.0.0.1:5004"]
    link.sent.clear()
    routed.send(between("198.19.0.1", "198.19.4.7"))
    routed.send(between("198.19.0.1", "198.19.3.7"))  # c's prefix: nobody's now
    assert link.sent == [("127.0.0.1:5004", between("198.19.0.1", "198.19.4.7"))]
    link.arriving = [("127.0.0.1:5004", between("198.19.4.5", "198.19.0.1")),
                     ("127.0.0.1:5002", between("198.19.2.5", "198.19.0.1"))]
    assert len(routed.receive(0)) == 2  # b's source check uses the new table's peer
    changed = "b,allowed=198.19.2.0/23,endpoint=127.0.0.1:5002"
    added, removed = routed.update(PeerTable(map(parse_peer, (changed, D))))
    assert ([peer.name for peer in added], [peer.name for peer in removed]) == (["b"], ["b"])
    assert routed.view.stacks["b"].port is not ports["b"]
    routed.close_peers()
    assert opened.open == set()


def test_an_update_that_fails_to_open_a_peer_changes_nothing() -> None:
    link = Stations()

    def failing(port: PeerPort, undo: contextlib.ExitStack) -> PeerPort:
        if port.name == "d":
            raise ConfigError("d: bad key")
        return port

    routed = PeerRouter(link, PeerTable(map(parse_peer, (B, C))), failing)
    view = routed.view
    with pytest.raises(ConfigError, match="d: bad key"):
        routed.update(PeerTable(map(parse_peer, (B, D))))
    assert routed.view is view
    assert link.stations == ["127.0.0.1:5002", "127.0.0.1:5003"]


def test_a_peer_a_reload_removes_goes_down_once() -> None:
    routed, watch = c_heard()
    routed.update(PeerTable(map(parse_peer, (B,))))
    changes = watch.observe(0.1)
    assert [(peer.name, change.new, change.reason) for peer, change in changes] == [
        ("c", LinkState.DOWN, "removed by reload")]
    assert watch.observe(0.2) == [] and set(watch.status(0.2)) == {"b"}


@pytest.mark.parametrize(("old", "new", "only"), [
    ({"peer": [B], "name": "x"}, {"peer": [B, C], "name": "x"}, True),
    ({"peer": [B], "name": "x"}, {"peer": [B, C], "name": "y"}, False),  # a restart
    ({"peer": [B], "name": "x"}, {"peer": [B], "name": "x"}, False),  # nothing changed
])
def test_a_reload_retunes_in_place_only_when_just_the_peers_changed(
        old: dict[str, object], new: dict[str, object], only: bool) -> None:
    assert peers_only(old, new) is only


def test_an_answer_that_comes_while_a_peer_is_being_added_goes_up_its_stack() -> None:
    link = Stations()
    answer = between("198.19.4.5", "198.19.0.1")
    routed: list[PeerRouter] = []

    def answered_at_once(port: PeerPort, undo: contextlib.ExitStack) -> PeerPort:
        if port.name == "d":  # its handshake answered before the new view is in place
            link.arriving = [("127.0.0.1:5004", answer)]
            assert routed[0].receive(0) == []
        return port

    routed.append(PeerRouter(link, PeerTable(map(parse_peer, (B,))), answered_at_once))
    routed[0].update(PeerTable(map(parse_peer, (B, D))))
    assert routed[0].receive(0) == [answer]
    assert routed[0].counters.drops == {}
