"""`linkbridge lab --stations N` for real (docs/multipoint.md): N hosts on one switch, a
multipoint tunnel in each over the sim: radio medium (named stations, half duplex, 9600
bit/s), every ordered pair pinged one at a time. Every pair answers (>= 95% of the pings in
all), and no station's TUN device ever sees a unicast packet meant for another. With a line
topology A - B - C, A and C do not hear each other and reach each other through B, which
forwards IP. With link-local addresses, every station answers an echo request to ff02::1
at least once in ten."""

from __future__ import annotations

from pathlib import Path

import pytest

from linkbridge.lab.probes import multicast_ping
from linkbridge.lab.stations import DEVICE, lab_stations_link, link_local, run_stations, stations_up
from linkbridge.lab.topology import star_hosts
from linkbridge.plugin.registry import LinkRegistry

RADIO = "sim:?duplex=half&rate=9600&seed=7"


@pytest.mark.usefixtures("root", "run_dir")
def test_stations_on_one_radio_medium_all_answer_and_see_only_their_unicast(
        registry: LinkRegistry, long_run: bool, capsys: pytest.CaptureFixture[str]) -> None:
    count, pings = (8, 10) if long_run else (4, 3)
    report = run_stations(RADIO, count, None, pings, None, registry)
    pairs = count * (count - 1)
    assert len(report.pings) == pairs
    assert all(result.sent == pings for result in report.pings.values())
    assert report.delivered >= 0.95, capsys.readouterr().out
    assert all(result.received >= 1 for result in report.pings.values()), report.pings
    assert report.others == [0] * count  # no unicast for another on any TUN
    assert all(mine >= (count - 1) * pings for mine in report.mine), report.mine
    out = capsys.readouterr().out
    assert f"of {pairs * pings} pings" in out and "collisions D:" in out


@pytest.mark.usefixtures("root", "run_dir")
def test_hidden_stations_in_a_line_reach_each_other_through_the_middle(
        registry: LinkRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    topology = tmp_path / "line.topology"
    topology.write_text("# A and C cannot hear each other\nA B\nB C\n")
    report = run_stations(RADIO, 3, str(topology), 3, None, registry)
    assert report.pings[0, 2].received >= 2 and report.pings[2, 0].received >= 2, report.pings
    assert report.delivered >= 0.9, capsys.readouterr().out
    assert report.others[0] == report.others[2] == 0
    # every answered ping between A and C crossed B's TUN twice (request and reply)
    assert report.others[1] >= 2 * (report.pings[0, 2].received + report.pings[2, 0].received)


@pytest.mark.usefixtures("root", "run_dir")
def test_a_udp_hub_relays_between_stations_that_peer_only_with_it(
        registry: LinkRegistry, capsys: pytest.CaptureFixture[str]) -> None:
    """`lab --stations 4 --link udp --hub`: B, C and D each have A as their one peer; A
    forwards IP between them, so every pair answers and A's TUN device carries every ping
    between two others twice (request and reply), and no other station's any."""
    report = run_stations("udp", 4, None, 3, None, registry, hub=True)
    out = capsys.readouterr().out
    assert report.delivered == 1.0, out
    relayed = sum(result.received for (i, j), result in report.pings.items() if 0 not in (i, j))
    assert relayed == 3 * 2 * 3 and report.others == [2 * relayed, 0, 0, 0], out
    assert "station A (198.19.1.1): tun in 18 for it, 36 forwarded" in out


@pytest.mark.usefixtures("root", "run_dir")
def test_every_station_on_the_radio_answers_an_all_nodes_ping(registry: LinkRegistry) -> None:
    """Four stations on the half-duplex 9600 bit/s medium, each with its link-local address
    (and each peer's in its allowed prefixes): in `ping -6 -c 10 -i 2 ff02::1%lbst0` from A,
    every other station answers at least once (their replies may collide on the air) and A's
    own host every time."""
    count = 4
    with star_hosts(count) as star, stations_up(star, RADIO, lab_stations_link(registry, RADIO),
                                                None, None, with_link_local=True):
        answers = multicast_ping(star.hosts[0], f"ff02::1%{DEVICE}", count=10, interval=2.0)
    assert set(answers) == {link_local(i) for i in range(count)}, answers
    assert len(answers[link_local(0)]) == 10, answers
