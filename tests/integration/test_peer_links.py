"""Several links per peer of a multipoint tunnel (docs/multipoint.md, "Several links per peer")
for real: a hub and two peers in namespaces, each host on two switches, each tunnel with a
udp: socket on each, the failover policy, each peer's packets compressed and encrypted once
across its links (--compress auto, keys). One peer's primary link is cut (its veth on the
first switch set down, outside the tunnel processes): its pings go on over the backup, the
other peer's pings lose nothing, and the hub's status shows each peer's state of each link.
And `linkbridge lab --stations` over two links."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from linkbridge.lab.links import set_veth
from linkbridge.lab.probes import ping
from linkbridge.lab.processes import LinkbridgeProcess, running_together
from linkbridge.lab.stations import run_stations
from linkbridge.lab.topology import Star, set_sysctl, star_hosts
from linkbridge.ops.status_data import parse_tunnel
from linkbridge.plugin.registry import LinkRegistry
from linkbridge.wire.drops import AUTH, DUPLICATE, REPLAY
from tests.helpers.commands import status_json
from tests.helpers.ping_stream import ping_stream
from tests.helpers.station_keys import station_keys

PORT = 47500
DEVICE = "lbk0"
NAMES = "abc"  # a is the hub
KEEPALIVE = 0.2  # link timeout 0.45 s
COUNT, INTERVAL = 40, 0.05  # pings from each peer, one at a time (each waits up to 0.5 s)
CUT_AFTER = 0.5


def overlay(index: int) -> str:
    return f"198.19.{index + 1}.1"


def endpoints(star: Star, index: int) -> str:
    """Station `index`'s endpoint= on each of the two links."""
    return ",".join(f"endpoint={network + 1}:{star.address_on(network, index)}:{PORT}"
                    for network in range(2))


def station_args(star: Star, index: int, keys: list[tuple[str, str]],
                 policy: str = "failover") -> list[str]:
    """`linkbridge up` of station `index`: the hub has b and c as peers, b and c the hub."""
    args = ["up", "--name", DEVICE, "--address", f"{overlay(index)}/16",
            "--link-policy", policy, "--hold-time", "10", "--keepalive", str(KEEPALIVE),
            "--compress", "auto", "--private-key", keys[index][0]]
    for network in range(2):
        args += ["--link", f"udp:?bind={star.address_on(network, index)}:{PORT}"]
    for other in ((1, 2) if index == 0 else (0,)):
        args += ["--peer", f"{NAMES[other]},allowed=198.19.{other + 1}.0/24,"
                           + endpoints(star, other) + f",key={keys[other][1]}"]
    return args


@pytest.fixture
def star(root: None) -> Iterator[Star]:
    with star_hosts(3, networks=2) as hosts:
        for host in hosts.hosts:  # no IPv6 of the kernel's own
            set_sysctl(host, "net/ipv6/conf/default/disable_ipv6", "1")
        yield hosts


def hub_status(hub: LinkbridgeProcess) -> dict[str, Any]:
    [document] = [doc for doc in status_json() if doc["pid"] == hub.proc.pid]  # type: ignore[union-attr]
    return document


def hub_links(hub: LinkbridgeProcess) -> dict[str, dict[str, Any]]:
    """The hub's rows of its peers' links (status --json), by PEER/LINK:STATION."""
    return {link["name"]: link for link in hub_status(hub)["links"]}


@pytest.mark.parametrize("policy", ["failover", "duplicate"])
def test_a_peers_primary_link_fails_over_and_the_other_peer_loses_nothing(
        run_dir: object, star: Star, tmp_path: Path, policy: str) -> None:
    """With duplicate, b loses nothing either: its copies over the second link carry it
    across the cut, and the hub drops the other copies as `duplicate`."""
    keys = station_keys(tmp_path, NAMES)
    stations = [LinkbridgeProcess(host, station_args(star, index, keys, policy),
                                  f"station {NAMES[index]}")
                for index, host in enumerate(star.hosts)]
    with running_together(*stations):
        for index in (1, 2):  # both peers reach the hub before the test starts
            assert ping(star.hosts[index], overlay(0), count=3, interval=0.1,
                        timeout=1.0).received >= 1
        with ping_stream(star.hosts[1], overlay(0), COUNT, INTERVAL, timeout=0.5) as b, \
                ping_stream(star.hosts[2], overlay(0), COUNT, INTERVAL, timeout=0.5) as c:
            time.sleep(CUT_AFTER)
            set_veth(star.hosts[1], star.veth_on(0), up=False)
            cut = time.perf_counter()  # (once down: a ping sent as it went may have crossed)
        [b_pings], [c_pings] = b, c
        links = hub_links(stations[0])
        peers = dict(parse_tunnel(hub_status(stations[0])).peers)
    after = [(sent - cut, rtt) for sent, rtt in b_pings.timeline if sent > cut]
    first = next((moment for moment, rtt in after if rtt is not None), None)
    print(f"peer links ({policy}): b's first reply over the backup for a ping sent "
          f"{first and round(first, 2)} s after the cut, "
          f"{sum(rtt is None for _moment, rtt in after)} of its pings lost; c lost "
          f"{c_pings.sent - c_pings.received} of {c_pings.sent}; hub's rows: "
          + ", ".join(f"{name} {row['state']}{'*' if row['active'] else ''}"
                      for name, row in sorted(links.items())))
    assert c_pings.sent == COUNT and c_pings.received == COUNT, c_pings  # undisturbed
    assert first is not None and first <= 1.0, after  # on the backup within a second
    assert all(rtt is not None for moment, rtt in after if moment > first), after
    b1, b2 = (f"b/{network + 1}:{star.address_on(network, 1)}:{PORT}" for network in range(2))
    c1, c2 = (f"c/{network + 1}:{star.address_on(network, 2)}:{PORT}" for network in range(2))
    states = {name: (links[name]["state"], links[name]["active"]) for name in (b1, b2, c1, c2)}
    both = policy == "duplicate"
    assert states == {b1: ("down", False), b2: ("up", True),
                      c1: ("up", True), c2: ("up", both)}, links
    if both:
        assert b_pings.received == COUNT, after  # the copies over the second link
    else:
        assert links[c2]["counters"]["tx_packets"] < links[c1]["counters"]["tx_packets"]
    for name in "bc":  # one session and one compressor per peer, across its links
        [session] = [layer.encryption for layer in peers[name].stack() if layer.encryption]
        [compress] = [layer.compression for layer in peers[name].stack() if layer.compression]
        drops = {reason for layer in peers[name].stack() for reason in layer.drops}
        assert session.state == "established" and session.handshakes >= 1, session
        assert compress.tx.compressed > 0 and not drops & {REPLAY, AUTH}, (compress, drops)
        assert DUPLICATE in drops or not both, drops  # (failover too, before links are up)


@pytest.mark.usefixtures("root", "run_dir")
def test_the_stations_lab_runs_over_two_links(registry: LinkRegistry,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """`lab --stations 2 --link 'sim:?duplex=half&rate=1mbit' --link udp`: every tunnel on
    both links (sim: stations named on the medium, udp: sockets on a second switch), the
    medium's rows in the report, every ping answered over the first."""
    report = run_stations("sim:?duplex=half&rate=1mbit&seed=3", 2, None, 3, None, registry,
                          more_links=["udp"])
    out = capsys.readouterr().out
    assert report.delivered == 1.0 and report.others == [0, 0], out
    frames = [int(line.split(" frames)")[0].rsplit(" ", 1)[1]) for line in out.splitlines()
              if line.startswith("airtime ")]
    assert len(frames) == 2 and sum(frames) >= 12, out  # the 6 pings each way on the medium
