"""`linkbridge status`: live counters of every tunnel, private sockets, stale ones cleaned."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

from linkbridge.datapath.counters import Counters
from linkbridge.lab.probes import ping
from linkbridge.lab.processes import LinkbridgeProcess
from linkbridge.lab.run import TUN_NAME, lab_tunnels
from linkbridge.lab.topology import OVERLAY, TwoHosts
from linkbridge.ops.status import collect, publish_status
from linkbridge.plugin.registry import LinkRegistry
from linkbridge.plugin.tunnel_info import TunnelInfo
from tests.helpers.commands import status, status_json


def test_status_shows_both_lab_tunnels_with_counters(lab: TwoHosts, run_dir: object,
                                                     registry: LinkRegistry) -> None:
    with lab_tunnels(lab, "udp", registry=registry) as (side_a, side_b):
        assert ping(lab.a, OVERLAY[1], count=5, interval=0.01).received == 5
        documents = status_json()
        pids = {side.proc.pid for side in (side_a, side_b) if side.proc is not None}
        assert {doc["pid"] for doc in documents} == pids
        by_pid = {doc["pid"]: doc for doc in documents}
        assert side_a.proc is not None
        a = by_pid[side_a.proc.pid]
        assert a["device"] == TUN_NAME
        assert a["routes"] == [f"{OVERLAY[1]}/32"]
        assert a["link"].startswith("udp:")
        # the 5 echo requests went device -> link, the 5 replies link -> device (IPv6 noise aside)
        assert a["tunnel"]["rx_packets"] >= 5
        assert a["link_side"]["tx_packets"] == a["tunnel"]["rx_packets"]
        assert a["link_side"]["rx_packets"] >= 5
        assert a["tunnel"]["tx_packets"] == a["link_side"]["rx_packets"]
        table = status()
        assert table.returncode == 0
        lines = table.stdout.splitlines()
        assert lines[0].split()[:4] == ["DEVICE", "PID", "UP", "SIDE"]
        assert sum(line.startswith(TUN_NAME) for line in lines) == 2
        assert sum("link udp:" in line for line in lines) == 2


def test_status_describes_the_drop_reasons_it_shows(lab: TwoHosts, run_dir: object,
                                                     registry: LinkRegistry) -> None:
    """A plugin's own reason (sim: declares `sim_loss`) comes with its description, in the
    JSON's `reasons` map and in the table's legend."""
    with lab_tunnels(lab, "sim:?loss=50%&seed=5", registry=registry) as (side_a, _side_b):
        ping(lab.a, OVERLAY[1], count=20, interval=0.01, timeout=0.5)
        assert side_a.proc is not None
        [a] = [doc for doc in status_json() if doc["pid"] == side_a.proc.pid]
        assert a["link_side"]["drops"].get("sim_loss", 0) > 0, a
        described = registry.drop_reasons()["sim_loss"]
        assert a["reasons"]["sim_loss"] == described
        assert set(a["reasons"]) == set(a["link_side"]["drops"]) | set(a["tunnel"]["drops"])
        lines = status().stdout.splitlines()
        legend = lines[lines.index("drop reasons:") + 1:]
        assert any(line.split()[0] == "sim_loss" and line.endswith(described)
                   for line in legend), lines


def test_sockets_are_private(lab: TwoHosts, run_dir: os.PathLike[str],
                             registry: LinkRegistry) -> None:
    with lab_tunnels(lab, "udp", registry=registry) as (side_a, _):
        owner_dir = os.path.join(run_dir, "0")
        assert stat.S_IMODE(os.stat(owner_dir).st_mode) == 0o700
        assert side_a.proc is not None
        sock = os.path.join(owner_dir, f"{side_a.proc.pid}-{TUN_NAME}.sock")
        assert stat.S_ISSOCK(os.stat(sock).st_mode)
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    assert os.listdir(owner_dir) == []  # removed on a clean stop


def test_killed_tunnel_is_skipped_and_cleaned(lab: TwoHosts, run_dir: os.PathLike[str]) -> None:
    tunnel = LinkbridgeProcess(lab.a, ["up", "--rx", "2001", "--tx", "2002", "--remote",
                                       "198.19.40.0/24", "--name", "lbkill"], "victim")
    with tunnel:
        assert [doc["device"] for doc in status_json()] == ["lbkill"]
        assert tunnel.stop(signal.SIGKILL) == -signal.SIGKILL
    leftovers = os.listdir(os.path.join(run_dir, "0"))
    assert len(leftovers) == 1  # a SIGKILLed process cannot clean up...
    assert status_json() == []  # ...the reader notices nobody answers
    assert os.listdir(os.path.join(run_dir, "0")) == []
    assert status().stdout.strip() == "no linkbridge tunnels running"


def test_status_of_a_link_process_and_uptime(lab: TwoHosts, run_dir: object) -> None:
    link = LinkbridgeProcess(lab.a, ["link", "udp:198.18.0.2:47011", "--rx", "2101", "--tx",
                                     "2102"], "link half")
    with link:
        time.sleep(1.1)
        [doc] = status_json()
        assert doc["device"] == "ports rx=2101 tx=2102"
        assert doc["link"] == "udp:198.18.0.2:47011"
        assert doc["uptime_s"] >= 1.0


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def unanswered_socket(path: Path) -> None:
    """A socket file nobody accepts on, as a killed tunnel (or one not listening yet) leaves."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))


def test_only_sockets_of_dead_processes_are_removed(run_dir: Path) -> None:
    owner_dir = run_dir / str(os.geteuid())
    owner_dir.mkdir(parents=True)
    stale = owner_dir / f"{dead_pid()}-lbgone.sock"
    starting = owner_dir / f"{os.getpid()}-lbstarting.sock"  # alive, not listening yet
    unanswered_socket(stale)
    unanswered_socket(starting)
    assert collect(run_dir) == []
    assert not stale.exists()
    assert starting.exists()


def test_a_new_tunnel_sweeps_leftovers(run_dir: Path) -> None:
    owner_dir = run_dir / str(os.geteuid())
    owner_dir.mkdir(parents=True)
    stale = owner_dir / f"{dead_pid()}-lbold.sock"
    unanswered_socket(stale)
    endpoint = Counters()

    class Side:
        name = "side"
        counters = endpoint

    info = TunnelInfo("lbnew", 1400, (), (), "test:")
    with publish_status(info, Side(), Side()):  # type: ignore[arg-type]
        assert not stale.exists()
        [document] = collect(run_dir)
        assert document["device"] == "lbnew"
    assert list(owner_dir.iterdir()) == []
