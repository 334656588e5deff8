"""The pure parts of `lab --stations` (docs/multipoint.md): the routes a topology gives each
station's peer table, the `up` command lines, the report's matrix, and the one-line errors
for a link or topology the lab cannot use."""

from __future__ import annotations

from pathlib import Path

import pytest
from linkbridge_sim.links import SimLink
from linkbridge_udp import UdpLink

from linkbridge.cli.lab import stations_mode
from linkbridge.cli.parser import build_parser
from linkbridge.errors import ConfigError
from linkbridge.lab.probes import PingResult
from linkbridge.lab.stations import (
    StationsReport,
    hub_neighbours,
    lab_stations_link,
    next_hops,
    run_stations,
    station_args,
)
from linkbridge.plugin.lab import LabStation, LabStationHosts
from linkbridge.plugin.registry import LinkRegistry, get_plugin_manager
from linkbridge.plugin.url import LinkUrl, parse_link_url

HOSTS = LabStationHosts(("nsA", "nsB", "nsC"), ("198.18.1.1", "198.18.1.2", "198.18.1.3"),
                        ("A", "B", "C"))
STATIONS = [LabStation(LinkUrl("sim", "198.18.1.1:47200", {"station": name}), name, ())
            for name in "ABC"]


def test_a_full_mesh_makes_every_station_a_direct_peer() -> None:
    assert next_hops([(1, 2), (0, 2), (0, 1)]) == [{1: [], 2: []}, {0: [], 2: []},
                                                   {0: [], 1: []}]


def test_a_line_routes_the_far_stations_through_the_middle_ones() -> None:
    line = [(1,), (0, 2), (1, 3), (2,)]  # A - B - C - D
    assert next_hops(line) == [{1: [2, 3]}, {0: [], 2: [3]}, {1: [0], 3: []}, {2: [0, 1]}]
    assert next_hops([(1,), (0,), ()]) == [{1: []}, {0: []}, {}]  # C unreachable


def test_a_station_peers_with_its_neighbours_owning_what_lies_behind_them() -> None:
    args = station_args(0, STATIONS, {1: [2]}, 1000)
    assert args[args.index("--address") + 1] == "198.19.1.1/16"
    assert args[args.index("--peer") + 1] == \
        "B,allowed=198.19.2.0/24,allowed=198.19.3.0/24,endpoint=B"
    assert args.count("--peer") == 1 and args[-2:] == ["--mtu", "1000"]


def test_with_link_local_a_station_has_its_own_and_each_peer_owns_its_neighbours() -> None:
    args = station_args(1, STATIONS, {0: [], 2: []}, None, with_link_local=True)
    assert args[args.index("fe80::2/64") - 1] == "--address"
    peers = [args[i + 1] for i, arg in enumerate(args) if arg == "--peer"]
    assert peers == ["A,allowed=198.19.1.0/24,allowed=fe80::1/128,endpoint=A",
                     "C,allowed=198.19.3.0/24,allowed=fe80::3/128,endpoint=C"]


def test_the_report_prints_the_matrix_and_what_each_tun_saw() -> None:
    report = StationsReport(("A", "B"), forwarding=False, mine=[6, 5], others=[0, 0],
                            devices=[{"tx_packets": 6, "rx_packets": 6}, {}])
    report.pings = {(0, 1): PingResult(sent=3, rtts_ms=[200.0, 210.0, 220.0]),
                    (1, 0): PingResult(sent=3, rtts_ms=[200.0, 230.0])}
    lines = report.lines()
    assert lines[1].split() == ["A", "B"]
    assert lines[2].split() == ["A", "-", "3/3"] and lines[3].split() == ["B", "2/3", "-"]
    assert lines[4] == "delivered 83.3% of 6 pings, round trip median 210 ms"
    assert "0 unicast for others (must be 0)" in lines[5] and "tx 6 rx 6" in lines[5]


def test_links_without_lab_stations_and_bad_counts_are_one_line_errors() -> None:
    registry = LinkRegistry(get_plugin_manager())
    with pytest.raises(ConfigError, match=r"cannot run lab --stations.*sim:, udp:"):
        lab_stations_link(registry, "serial")
    for count, pings in ((1, 3), (27, 3), (3, 0)):
        with pytest.raises(ConfigError, match=r"--stations must be|--pair-count"):
            run_stations("sim:?duplex=half&rate=9600", count, None, pings, None, registry)


def test_the_sim_lab_needs_a_radio_and_a_topology_naming_the_lab_stations(
        tmp_path: Path) -> None:
    def enter(link: str, topology: str | None = None) -> None:
        hosts = LabStationHosts(HOSTS.netns, HOSTS.addresses, HOSTS.names, topology)
        with SimLink.lab_stations(parse_link_url(link), hosts):
            pass

    with pytest.raises(ConfigError, match="duplex=half"):
        enter("sim:?loss=1%")
    with pytest.raises(ConfigError, match="chooses the sim: addresses"):
        enter("sim:?duplex=half&rate=9600&station=X")
    for text, error in (("A B\nB D\n", "station D is not in the lab"),
                        ("A B\n", "station C is not named"), ("A\n", "line 1")):
        path = tmp_path / "t"
        path.write_text(text)
        with pytest.raises(ConfigError, match=error):
            enter("sim:?duplex=half&rate=9600", str(path))
    with pytest.raises(ConfigError, match=r"topology .*missing"):
        enter("sim:?duplex=half&rate=9600", str(tmp_path / "missing"))


def test_udp_stations_are_a_mesh_on_their_hosts_addresses_and_take_no_topology() -> None:
    with UdpLink.lab_stations(parse_link_url("udp:?mtu=1400"), HOSTS) as stations:
        assert str(stations[0].url) == "udp:?mtu=1400&bind=198.18.1.1:47000"
        assert [s.endpoint for s in stations] == [f"198.18.1.{n}:47000" for n in (1, 2, 3)]
        assert [s.neighbours for s in stations] == [(1, 2), (0, 2), (0, 1)]
    hidden = LabStationHosts(HOSTS.netns, HOSTS.addresses, HOSTS.names, "line.topology")
    with pytest.raises(ConfigError, match="needs the sim: radio medium"), \
            UdpLink.lab_stations(parse_link_url("udp"), hidden):
        pass


@pytest.mark.parametrize(("argv", "error"), [
    (["--stations", "3", "--encrypt"], "--encrypt is an option of the two-host lab"),
    (["--stations", "3", "--bytes", "0"], "--bytes is an option of the two-host lab"),
    (["--stations", "3", "--via", "sim:?loss=1%"], "--via is an option"),
    (["--topology", "line"], "--topology needs --stations N"),
    (["--pair-count", "5"], "--pair-count needs --stations N"),
    (["--hub"], "--hub needs --stations N"),
])
def test_options_of_the_other_lab_are_refused_in_one_line(argv: list[str], error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        stations_mode(build_parser().parse_args(["lab", *argv]))


def test_a_hub_lab_routes_every_station_through_a() -> None:
    neighbours = hub_neighbours(4)
    assert neighbours == [(1, 2, 3), (0,), (0,), (0,)]
    assert next_hops(neighbours) == [{1: [], 2: [], 3: []}, {0: [2, 3]}, {0: [1, 3]},
                                     {0: [1, 2]}]
    with pytest.raises(ConfigError, match="--hub and --topology"):
        run_stations("udp", 3, "line", 3, None, LinkRegistry(get_plugin_manager()), hub=True)


def test_the_lab_runs_stations_only_when_asked() -> None:
    assert stations_mode(build_parser().parse_args(["lab", "--stations", "4", "--topology",
                                                    "line", "--pair-count", "2"]))
    assert not stations_mode(build_parser().parse_args(["lab", "--encrypt"]))
