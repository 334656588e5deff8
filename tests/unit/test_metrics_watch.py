"""Counters as Prometheus/OpenMetrics text, live rates for `status --watch`, the lab plot."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from linkbridge.errors import ConfigError
from linkbridge.lab.plot import LabSeries, axis_limit, nice_ceiling, series_json, svg, throughput
from linkbridge.ops.metrics import escape, exposition, parse_listen, wants_openmetrics
from linkbridge.ops.status_data import SideStatus, TunnelStatus
from linkbridge.ops.watch import CLEAR, rate_lines, rate_table, rates, watch


def snapshot(pid: int = 7, uptime: float = 10.0, rx: int = 0, drops: dict[str, int] | None = None,
             link: str = "udp:198.18.0.2:5555") -> TunnelStatus:
    """A tunnel's status as `linkbridge status` reads it."""
    return TunnelStatus(device="lb0", pid=pid, uid=0, link=link, mtu=1400, started=1.5,
                        uptime_s=uptime,
                        tunnel=SideStatus("lb0", rx_packets=rx, rx_bytes=rx * 100, tx_packets=1,
                                          tx_bytes=100),
                        link_side=SideStatus("udp", rx_packets=1, rx_bytes=100, tx_packets=rx,
                                             tx_bytes=rx * 100, drops=drops or {}))


SAMPLE = re.compile(r'^([a-z_]+)\{((?:[a-z]+="(?:[^"\\]|\\.)*",?)*)\} (\S+)$')


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Parse the exposition's sample lines; every line must be a comment or a valid sample."""
    found = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) [a-z_]+ .+$|^# EOF$", line), line
            continue
        match = SAMPLE.match(line)
        assert match, line
        labels = frozenset(re.findall(r'([a-z]+)="((?:[^"\\]|\\.)*)"', match[2]))
        key = (match[1], labels)
        assert key not in found, f"duplicate series {line}"
        found[key] = float(match[3])
    return found


def test_exposition_has_a_series_per_side_and_direction_and_drop_reason() -> None:
    text = exposition([snapshot(rx=5, drops={"malformed_short": 2}), snapshot(pid=8)])
    found = samples(text)
    base = {("tunnel", "lb0"), ("pid", "7"), ("link", "udp:198.18.0.2:5555")}
    assert found[("linkbridge_packets_total",
                  frozenset(base | {("side", "tunnel"), ("direction", "rx")}))] == 5
    assert found[("linkbridge_bytes_total",
                  frozenset(base | {("side", "link"), ("direction", "tx")}))] == 500
    assert found[("linkbridge_drops_total",
                  frozenset(base | {("side", "link"), ("reason", "malformed_short")}))] == 2
    assert found[("linkbridge_mtu_bytes", frozenset(base))] == 1400
    # two tunnels of the same device name (lab namespaces) stay apart by pid
    assert sum(name == "linkbridge_packets_total" for name, _ in found) == 8
    assert "# TYPE linkbridge_packets_total counter" in text
    assert not text.rstrip().endswith("# EOF")


def test_openmetrics_names_families_without_total_and_ends_with_eof() -> None:
    text = exposition([snapshot(rx=1)], openmetrics=True)
    samples(text)
    assert "# TYPE linkbridge_packets counter" in text
    assert text.endswith("# EOF\n")
    assert exposition([], openmetrics=True).count("linkbridge_packets_total") == 0


def test_label_values_are_escaped() -> None:
    assert escape('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    found = samples(exposition([snapshot(link='sim:?x="1"\\')]))
    assert any(("link", 'sim:?x=\\"1\\"\\\\') in labels for _, labels in found)


def test_listen_address_defaults_to_loopback() -> None:
    assert parse_listen("9101") == ("127.0.0.1", 9101)
    assert parse_listen("0.0.0.0:9101") == ("0.0.0.0", 9101)
    assert parse_listen("[::1]:9101") == ("::1", 9101)
    assert parse_listen(":9101") == ("127.0.0.1", 9101)
    for bad in ("", "abc", "1.2.3.4:0", "1.2.3.4:70000", "host:"):
        with pytest.raises(ConfigError, match=r"\[ADDR:\]PORT"):
            parse_listen(bad)
    assert wants_openmetrics("application/openmetrics-text;version=1.0.0,text/plain;q=0.5")
    assert not wants_openmetrics("text/plain")


def test_rates_divide_by_the_tunnels_own_uptime() -> None:
    before = [snapshot(uptime=10.0, rx=100)]
    after = [snapshot(uptime=12.0, rx=300), snapshot(pid=9, uptime=1.0, rx=50)]
    found = rates(before, after)
    tunnel = next(r for r in found if r.pid == 7 and r.side == "tunnel")
    assert tunnel.rx_pps == 100.0 and tunnel.rx_bps == 10_000.0 and tunnel.tx_pps == 0.0
    link = next(r for r in found if r.pid == 7 and r.side == "link")
    assert link.tx_pps == 100.0
    assert all(r.rx_pps is None for r in found if r.pid == 9)  # new: no rate yet
    table = rate_table(found)
    assert "100.0/s" in table and "9.8 KiB/s" in table
    assert rate_table([]) == "no linkbridge tunnels running"
    assert rate_lines(found, "12:00:00")[0] == (
        "12:00:00 lb0 7 tunnel rx_pps=100.0 rx_bytes_per_s=10000.0 tx_pps=0.0 "
        "tx_bytes_per_s=0.0")


def test_counter_reset_is_not_a_negative_rate() -> None:
    [tunnel, _] = rates([snapshot(uptime=10.0, rx=100)], [snapshot(uptime=11.0, rx=10)])
    assert tunnel.rx_pps == 0.0


class _Pipe(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def _feed() -> Any:
    documents = iter([[snapshot(uptime=1.0, rx=0)], [snapshot(uptime=2.0, rx=10)],
                      [snapshot(uptime=3.0, rx=30)]])
    return lambda: next(documents)


def test_watch_appends_lines_into_a_pipe() -> None:
    out = _Pipe(tty=False)
    watch(_feed(), out, 1.0, count=2, sleep=lambda _: None)
    lines = out.getvalue().splitlines()
    assert len(lines) == 4 and CLEAR not in out.getvalue()
    assert "tunnel rx_pps=10.0" in lines[0] and "tunnel rx_pps=20.0" in lines[2]


def test_watch_redraws_a_terminal() -> None:
    out = _Pipe(tty=True)
    watch(_feed(), out, 0.5, count=2, sleep=lambda _: None)
    screens = out.getvalue().split(CLEAR)
    assert screens[0] == "" and len(screens) == 3
    assert "every 0.5 s" in screens[1] and "20.0/s" in screens[2]


def test_throughput_per_direction() -> None:
    found = throughput([(0.0, 0, 0), (0.5, 1000, 10), (1.0, 1000, 10)])
    assert found["A -> B"] == [(0.5, 16000.0), (1.0, 0.0)]
    assert found["B -> A"] == [(0.5, 160.0), (1.0, 0.0)]
    assert throughput([(0.0, 0, 0)]) == {"A -> B": [], "B -> A": []}


def test_nice_ceiling() -> None:
    assert [nice_ceiling(v) for v in (0, 0.7, 1, 3, 42, 260, 9600)] == [
        1, 1, 1, 5, 50, 500, 10000]
    assert [axis_limit(v) for v in (2.01, 0.7, 21.5, 9600)] == pytest.approx([2.4, 0.8, 24, 10000])


def test_svg_draws_every_series_and_reference() -> None:
    series = LabSeries(rtt_ms=[(0.0, 12.0), (0.05, None), (0.1, 14.0)],
                       throughput_bps=throughput([(0.0, 0, 0), (0.1, 1200, 0), (0.2, 2400, 60)]),
                       samples=3, configured_rtt_ms=13.0,
                       configured_rate_bps={"A -> B": 9600.0})
    root = ET.fromstring(svg(series, "lab <udp>"))
    ns = "{http://www.w3.org/2000/svg}"
    lines = {p.get("data-series"): p.get("points", "").split()
             for p in root.iter(f"{ns}polyline")}
    assert len(lines["rtt"]) == 2 and len(lines["A -> B"]) == 2 and len(lines["B -> A"]) == 2
    assert {r.get("data-reference") for r in root.iter(f"{ns}line")} >= {"rtt", "A -> B"}
    assert len([p for p in root.iter(f"{ns}path") if p.get("class") == "lost"]) == 1
    data = json.loads(json.dumps(series_json(series)))
    assert [point["ms"] for point in data["rtt_ms"]] == [12.0, None, 14.0]
    assert data["configured"] == {"rtt_ms": 13.0, "rate_bps": {"A -> B": 9600.0}}


def test_svg_of_an_empty_run_is_still_a_picture() -> None:
    root = ET.fromstring(svg(LabSeries(), "nothing"))
    assert root.tag.endswith("svg")


def test_watch_options_need_watch(capsys: pytest.CaptureFixture[str]) -> None:
    from linkbridge.cli.main import main
    assert main(["status", "--count", "2"]) == 2
    assert capsys.readouterr().err == (
        "linkbridge: error: --interval and --count go with --watch\n")
    with pytest.raises(SystemExit):
        main(["status", "--watch", "--count", "0"])
    assert "not a whole number above 0" in capsys.readouterr().err
