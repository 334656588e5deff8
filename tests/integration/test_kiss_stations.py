"""`linkbridge lab --stations 3 --link kiss:?mode=...` for real (docs/kiss.md "Many
stations"): three multipoint tunnels in namespaces, each on a pty of one KISS hub process that
forwards every whole frame to the other two (a shared channel). Every ordered pair answers its
pings, no station's TUN device sees a unicast meant for another (the hub hands every frame to
everyone: the callsigns or MAC addresses pick the station), and the hub counted each station's
frames."""

from __future__ import annotations

import pytest

from linkbridge.lab.stations import run_stations
from linkbridge.plugin.registry import LinkRegistry


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
