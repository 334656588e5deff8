"""`linkbridge lab --stations 3 --link kiss:?mode=...` for real (docs/kiss.md "Many
stations"): three multipoint tunnels in namespaces, each on a pty of one KISS hub process that
forwards every whole frame to the other two (a shared channel). Every ordered pair answers its
pings, no station's TUN device sees a unicast meant for another (the hub hands every frame to
everyone: the callsigns or MAC addresses pick the station), and the hub counted each station's
frames. A broadcast and a multicast from one station reach both others, once each."""

from __future__ import annotations

import pytest

from linkbridge.lab.stations import DEVICE, lab_stations_link, overlay, run_stations, stations_up
from linkbridge.lab.topology import star_hosts
from linkbridge.plugin.registry import LinkRegistry
from tests.integration.test_multipoint import Sniffer, send_udp, until


@pytest.mark.parametrize("mode", ["ax25", "ethernet"])
@pytest.mark.usefixtures("root", "run_dir")
def test_three_stations_on_a_kiss_hub_all_answer_and_see_only_their_unicast(
        registry: LinkRegistry, mode: str, capsys: pytest.CaptureFixture[str]) -> None:
    report = run_stations(f"kiss:?mode={mode}&baud=115200", 3, None, 3, None, registry)
    out = capsys.readouterr().out
    assert len(report.pings) == 6 and report.delivered == 1.0, out
    assert report.others == [0, 0, 0], out  # no unicast for another on any TUN
    assert all(mine >= 2 * 3 for mine in report.mine), report.mine
    assert [label for label, *_ in report.link_rows] == ["hub A", "hub B", "hub C"]
    for _label, _configured, measured, note in report.link_rows:
        frames_in = int(measured.split()[0])
        assert frames_in >= 2 * 3 * 2, measured  # requests and replies it sent
        assert note == "0 lost, 0 dropped"


@pytest.mark.usefixtures("root", "run_dir")
def test_broadcast_and_multicast_reach_every_other_station_through_qst(
        registry: LinkRegistry) -> None:
    link = "kiss:?mode=ax25&baud=115200"
    with star_hosts(3) as star, \
            stations_up(star, link, lab_stations_link(registry, link), None, None):
        sniffers = [Sniffer(host, DEVICE) for host in star.hosts]
        send_udp(star.hosts[0], "198.19.255.255", b"mp:broadcast", broadcast=True)
        send_udp(star.hosts[0], "239.1.2.3", b"mp:multicast", multicast_from=overlay(0))
        expected = [[], [b"mp:broadcast", b"mp:multicast"], [b"mp:broadcast", b"mp:multicast"]]
        until(lambda: [sniffer.markers() for sniffer in sniffers] == expected)
        seen = [sniffer.markers() for sniffer in sniffers]
        for sniffer in sniffers:
            sniffer.sock.close()
    assert seen == expected
