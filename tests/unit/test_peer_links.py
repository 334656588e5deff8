"""Several links per peer of a multipoint tunnel (docs/multipoint.md, "Several links per
peer"): the rules validate() applies to the peers' LINK:STATION endpoints, each bad input one
line; and the router over the shared links in memory (an injected clock, no threads), where
each peer's own link scheduler fails over, de-duplicates and shows its links."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest

from linkbridge.cli import main as cli
from linkbridge.cli.up import plan_up
from linkbridge.datapath.endpoint import Endpoint
from linkbridge.datapath.mss import ANY_SIZE, MssClamp, smallest_up
from linkbridge.datapath.multilink import LinkScheduler
from linkbridge.datapath.multipoint import PeerPort
from linkbridge.datapath.peerlinks import LinksPort, LinksRouter, PeerLinks
from linkbridge.datapath.pipeline import (
    LinkBelow,
    Links,
    Lower,
    Pipeline,
    TunDevice,
    Upper,
    peer_scheduler,
    validate,
)
from linkbridge.errors import ConfigError
from linkbridge.testing import MemoryLink
from linkbridge.wire import drops
from linkbridge.wire.liveness import Thresholds
from linkbridge.wire.multilink import PROBE_FRAME, Policy, data_frame
from linkbridge.wire.peers import PeerTable, parse_peer
from linkbridge.wire.stack import Fragment
from tests.helpers.ip_packets import between, tcp
from tests.unit.test_multilink import Recorder
from tests.unit.test_multipoint import PLUGINS, Stations, options

THRESHOLDS = Thresholds(stale_after=0.3, down_after=0.45)
B = "b,allowed=198.19.2.0/24,endpoint=1:b,endpoint=2:b"  # the same name on both media
C = "c,allowed=198.19.3.0/24,endpoint=1:c"  # on the first link only


def two_links(*peers: str, second: object = None) -> tuple[Pipeline, Stations, object]:
    first, other = Stations(), second or Stations()
    links = Links((Lower(LinkBelow(other), Fragment("auto")),),  # type: ignore[arg-type]
                  Policy.FAILOVER, 10.0, 0.2, THRESHOLDS)
    pipeline = Pipeline(TunDevice(), Upper(), Lower(LinkBelow(first), Fragment("auto")),
                        peers=PeerTable(map(parse_peer, peers)), links=links)
    return pipeline, first, other


def test_each_link_gets_the_stations_named_on_it() -> None:
    pipeline, first, second = two_links(B, C)
    plan = validate(pipeline)
    assert first.stations == ["b", "c"] and second.stations == ["b"]  # type: ignore[attr-defined]
    assert plan.tunnel_mtu == 1472 - 7  # the scheduler's header, as with one peer


@pytest.mark.parametrize(("peers", "second", "message"), [
    ([B, "c,allowed=198.19.3.0/24,endpoint=c"], None,
     r"peer 'c': endpoint=c: with 2 links give each endpoint= as LINK:STATION, LINK 1 to 2"),
    ([B, "c,allowed=198.19.3.0/24,endpoint=3:c"], None, "LINK 1 to 2"),
    ([B, "c,allowed=198.19.3.0/24,endpoint=1:c,endpoint=1:d"], None,
     "peer 'c': give one endpoint=LINK:STATION for each link it uses"),
    ([B, "c,allowed=198.19.3.0/24"], None, "peer 'c': give one endpoint=LINK:STATION"),
    ([C], None, r"link 2 \(stations\): no peer has an endpoint= on it"),
    ([B], MemoryLink("x"), r"link 2 \(memory:x\) has no station addresses"),
])
def test_what_several_links_per_peer_refuse(peers: list[str], second: object,
                                            message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate(two_links(*peers, second=second)[0])


def test_the_command_line_plans_it_and_a_bad_endpoint_exits_with_status_2(
        capsys: pytest.CaptureFixture[str]) -> None:
    links = ["--link", "udp:?bind=127.0.0.1:5001", "--link", "udp:?bind=127.0.0.2:5001"]
    planned = plan_up(options(*links, "--peer", "b,allowed=198.19.2.0/24,"
                              "endpoint=2:127.0.0.2:5002,endpoint=1:127.0.0.1:5002"), PLUGINS)
    assert planned.pipeline.description.links is not None
    assert cli.main(["up", *links, "--peer", "b,allowed=10.0.0.0/8,endpoint=127.0.0.1:5002"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "give each endpoint= as LINK:STATION" in error


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def scheduled(clock: Clock, policy: Policy
              ) -> Callable[[PeerPort, contextlib.ExitStack], Endpoint]:
    """Each peer's stack: its link scheduler over its station ports, on `clock`."""
    def opener(port: PeerPort, undo: contextlib.ExitStack) -> Endpoint:
        assert isinstance(port, LinksPort)
        port.scheduler = LinkScheduler(port.ports, policy, THRESHOLDS, 10.0, 0.2,
                                       clock=clock, readers=False)
        return port.scheduler
    return opener


def hub(policy: Policy = Policy.FAILOVER) -> tuple[LinksRouter, Stations, Clock]:
    """A hub's router over in-memory shared links (stations LINK:STATION), peers b and c."""
    link, clock = Stations(), Clock()
    table = PeerTable(map(parse_peer, (B, C)))
    link.set_stations([station for peer in table.peers for station in peer.stations])
    return LinksRouter(link, table, scheduled(clock, policy)), link, clock


def arrive(router: LinksRouter, link: Stations, *frames: tuple[str, bytes]) -> list[bytes]:
    link.arriving += frames
    return router.receive(0)


def sent(link: Stations) -> list[str]:
    stations, link.sent = [station for station, _frame in link.sent], []
    return stations


def test_each_peer_fails_over_on_its_own_links() -> None:
    router, link, clock = hub()
    probes = [("1:b", PROBE_FRAME), ("2:b", PROBE_FRAME), ("1:c", PROBE_FRAME)]
    assert arrive(router, link, *probes) == []  # every link up, for its peer
    to_b, to_c = between("198.19.0.1", "198.19.2.9"), between("198.19.0.1", "198.19.3.9")
    router.send(to_b)
    router.send(to_c)
    assert sent(link) == ["1:b", "1:c"]
    clock.now = 0.5  # b's first link is silent for longer than the link timeout
    assert arrive(router, link, ("2:b", PROBE_FRAME), ("1:c", PROBE_FRAME)) == []
    router.send(to_b)
    router.send(to_c)
    assert sent(link) == ["2:b", "1:c"]  # b on its backup, c as before
    rows = {row["name"]: (row["state"], row["active"]) for row in PeerLinks(router).link_status()}
    assert rows == {"b/1:b": ("down", False), "b/2:b": ("up", True), "c/1:c": ("up", True)}
    watch = PeerLinks(router)
    assert watch.switches == 1 and watch.lowers == ()
    assert watch.usable_links() == [0, 1]  # c's first, b's second
    assert [(name, str(change.new)) for name, change in watch.link_changes()
            if change.old == "up"] == [("b/1:b", "down")]


def test_duplicate_sends_each_packet_on_each_of_its_peers_links() -> None:
    router, link, _clock = hub(Policy.DUPLICATE)
    assert arrive(router, link, ("1:b", PROBE_FRAME), ("2:b", PROBE_FRAME),
                  ("1:c", PROBE_FRAME)) == []
    router.send(between("198.19.0.1", "198.19.2.9"))
    router.send(between("198.19.0.1", "198.19.3.9"))
    copies = link.sent
    assert [station for station, _frame in copies] == ["1:b", "2:b", "1:c"]
    assert copies[0][1] == copies[1][1] != copies[2][1]  # one frame, one sequence per peer


def test_balance_releases_a_held_frame_when_its_wait_ends() -> None:
    router, link, clock = hub(Policy.BALANCE)
    router.resequencing = True
    first, third = between("198.19.2.9", "198.19.0.1"), between("198.19.2.8", "198.19.0.1")
    assert arrive(router, link, ("1:b", data_frame(1, first))) == [first]
    assert arrive(router, link, ("2:b", data_frame(3, third))) == []  # held: 2 is missing
    assert router.receive(0) == []  # nothing more from b, its wait not over
    clock.now = 0.1  # past --reorder-wait's 0.05 s
    assert router.receive(0) == [third]


def test_a_peers_frame_from_either_link_is_delivered_once() -> None:
    router, link, _clock = hub()
    packet = between("198.19.2.9", "198.19.0.1")
    frame = data_frame(7, packet)
    assert arrive(router, link, ("2:b", frame)) == [packet]
    assert arrive(router, link, ("1:b", frame)) == []  # the copy over the other link
    b = router.view.stacks["b"].port
    assert isinstance(b, LinksPort) and b.scheduler is not None
    assert b.scheduler.counters.drops == {drops.DUPLICATE: 1}
    assert [port.counters.rx_packets for port in b.ports] == [1, 1]
    assert b.counters.rx_packets == 2
    forged = data_frame(8, between("198.19.3.9", "198.19.0.1"))  # b speaking for c
    assert arrive(router, link, ("1:b", forged)) == []
    assert router.counters.drops == {drops.SOURCE_NOT_ALLOWED: 1}


def test_clamp_mss_follows_the_smallest_link_that_is_up() -> None:
    clock = Clock()
    lowers = [Recorder([]), Recorder([])]
    scheduler = LinkScheduler(lowers, Policy.FAILOVER, THRESHOLDS, 10.0, 0.2, clock=clock,
                              readers=False)
    largest = smallest_up((1400, 93), scheduler)  # a fat link and a narrow one
    assert largest() == 93  # none up yet: frames go on both
    for lower in lowers:
        lower.packets = [PROBE_FRAME]
    scheduler.receive(0)
    assert largest() == 93
    clock.now = 0.5  # the narrow one silent for longer than the link timeout: down
    lowers[0].packets = [PROBE_FRAME]
    scheduler.receive(0)
    assert scheduler.usable_links() == (0,) and largest() == 1400
    below = Recorder([])
    MssClamp(below, largest).send(tcp(flags=0x02, options=bytes((2, 4, 5, 0xB4))))  # MSS 1460
    assert below.sent == [tcp(flags=0x02, options=bytes((2, 4)) + (1400 - 40).to_bytes(2, "big"))]
    assert smallest_up((None, None), scheduler)() == ANY_SIZE  # no size: no clamping


def test_a_reload_gives_a_new_peer_its_links_and_keeps_the_others() -> None:
    router, link, clock = hub()
    kept = router.view.stacks["b"].port
    d = "d,allowed=198.19.4.0/24,endpoint=2:d"
    added, removed = router.update(PeerTable(map(parse_peer, (B, d))),
                                   scheduled(clock, Policy.FAILOVER))
    assert [peer.name for peer in added] == ["d"] and [peer.name for peer in removed] == ["c"]
    assert link.stations == ["1:b", "2:b", "2:d"] and router.view.stacks["b"].port is kept
    port = router.view.stacks["d"].port
    assert isinstance(port, LinksPort) and [p.station for p in port.ports] == ["2:d"]
    packet = between("198.19.4.9", "198.19.0.1")
    assert arrive(router, link, ("2:d", data_frame(1, packet))) == [packet]


def test_a_peer_fragments_to_each_of_its_links_own_size() -> None:
    narrow = Stations()
    narrow.mtu = 200
    pipeline, _first, _second = two_links(B, C, second=narrow)
    plan = validate(pipeline)
    assert plan.fragment_frame is None and plan.link_frames == (200,)
    link = Stations()
    peer = pipeline.peers.peers[0]  # type: ignore[union-attr]
    port = LinksPort(link, peer)
    with contextlib.ExitStack() as stack:
        scheduler = peer_scheduler(plan, port, stack)
        assert [lower.name for lower in scheduler.lowers] == ["1:b", "fragment+2:b"]
        assert port.scheduler is scheduler
        scheduler.send(between("198.19.0.1", "198.19.2.9") + bytes(600))  # no link up: both
    sizes = {station: [len(frame) for to, frame in link.sent if to == station]
             for station in ("1:b", "2:b")}
    assert len(sizes["1:b"]) == 1 and len(sizes["2:b"]) > 1, sizes  # whole, and in pieces
    assert max(sizes["2:b"]) <= 200 < sizes["1:b"][0], sizes
