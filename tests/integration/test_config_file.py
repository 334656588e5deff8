"""`linkbridge up -c FILE`: several tunnels in one process, JSON logs, clean stop on SIGTERM."""

from __future__ import annotations

import json
from pathlib import Path

from linkbridge.lab.probes import ping, tcp_transfer
from linkbridge.lab.processes import LinkbridgeProcess
from linkbridge.lab.topology import OVERLAY, UNDERLAY, TwoHosts
from tests.helpers.commands import run_in, status_json
from tests.helpers.namespace_state import devices, routed

SIDE = """
mtu = 1400

[[tunnel]]
name = "lbcfg0"
link = "udp:{peer}:47020"
remote = "{overlay_peer}"
address = "{overlay_self}"

[[tunnel]]
name = "lbcfg1"
link = "udp:{peer}:47021"
remote = "198.19.{remote_net}.0/24"
address = "198.19.{local_net}.1/24"
"""


def write_side(path: Path, me: int) -> Path:
    peer = 1 - me
    path.write_text(SIDE.format(peer=UNDERLAY[peer], overlay_peer=OVERLAY[peer],
                                overlay_self=OVERLAY[me], remote_net=50 + peer,
                                local_net=50 + me))
    return path


def test_two_tunnels_from_one_file(lab: TwoHosts, tmp_path: Path, run_dir: object) -> None:
    file_a, file_b = write_side(tmp_path / "a.toml", 0), write_side(tmp_path / "b.toml", 1)
    side_a = LinkbridgeProcess(lab.a, ["--log-format", "json", "up", "-c", str(file_a)], "A")
    side_b = LinkbridgeProcess(lab.b, ["up", "-c", str(file_b), "--mtu", "1300"], "B")
    with side_a, side_b:
        assert {"lbcfg0", "lbcfg1"} <= devices(lab.a)
        assert {"198.19.51.0/24", f"{OVERLAY[1]}/32"} <= routed(lab.a)
        assert ping(lab.a, OVERLAY[1], count=3, interval=0.01).received == 3  # over lbcfg0
        assert ping(lab.a, "198.19.51.1", count=3, interval=0.01).received == 3  # over lbcfg1
        assert tcp_transfer(lab.b, "198.19.51.1", lab.a, 500_000).intact
        mtus = {(doc["pid"], doc["device"]): doc["mtu"] for doc in status_json()}
        assert side_a.proc is not None and side_b.proc is not None
        assert mtus[(side_a.proc.pid, "lbcfg1")] == 1400  # the file's top-level mtu
        assert mtus[(side_b.proc.pid, "lbcfg1")] == 1300  # the command line overrides it
        assert side_a.stop() == 0
        assert side_b.stop() == 0
    for ns_name in (lab.a, lab.b):
        assert not {"lbcfg0", "lbcfg1"} & devices(ns_name)
        assert not {"198.19.50.0/24", "198.19.51.0/24"} & routed(ns_name)
    records = [json.loads(line) for line in side_a.output().splitlines()]
    messages = [record["message"] for record in records]
    assert any(m.startswith("lbcfg0 up:") for m in messages)
    assert any(m.startswith("lbcfg1 up:") for m in messages)
    assert any("stopped by SIGTERM" in m for m in messages)
    assert {record["level"] for record in records} <= {"info", "warning"}


def test_bad_second_tunnel_creates_nothing(lab: TwoHosts, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[tunnel]]\nname = "lbok"\nrx = 2001\ntx = 2002\nremote = "198.19.60.0/24"\n'
                   '[[tunnel]]\nname = "lbbad"\nlink = "udpp:198.18.0.2:1"\n'
                   'remote = "198.19.61.0/24"\n')
    done = run_in(lab.a, "up", "-c", str(bad))
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("linkbridge: error: tunnel[1].link: unknown link scheme 'udpp' "
                           "(did you mean 'udp'?); valid: ")
    assert not {"lbok", "lbbad"} & devices(lab.a)


def test_second_tunnel_failing_at_setup_rolls_back_the_first(lab: TwoHosts,
                                                             tmp_path: Path) -> None:
    clash = tmp_path / "clash.toml"
    clash.write_text('remote = "198.19.62.0/24"\n'  # the same route twice: the second fails
                     '[[tunnel]]\nname = "lbfst"\nrx = 2001\ntx = 2002\n'
                     '[[tunnel]]\nname = "lbsnd"\nrx = 2003\ntx = 2004\n')
    done = run_in(lab.a, "up", "-c", str(clash), "--strict")  # else it is retried
    assert done.returncode == 1
    assert "adding route to 198.19.62.0/24 via lbsnd failed" in done.stderr
    assert not {"lbfst", "lbsnd"} & devices(lab.a)
    assert "198.19.62.0/24" not in routed(lab.a)
