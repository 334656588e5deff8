"""Tunnel set-up and teardown on real TUN devices: rollback, signals, order of teardown."""

from __future__ import annotations

import re
import signal
import socket

import pytest

from linkbridge.lab import netns
from linkbridge.lab.processes import LinkbridgeProcess
from linkbridge.lab.topology import OVERLAY, TwoHosts
from tests.helpers.commands import run_in
from tests.helpers.namespace_state import devices, routed


def test_rollback_when_rx_port_in_use(lab: TwoHosts) -> None:
    with netns.inside(lab.a):
        holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with holder:
        holder.bind(("127.0.0.1", 2001))
        done = run_in(lab.a, "up", "--rx", "2001", "--tx", "2002", "--remote", "198.19.7.0/24",
                      "--address", OVERLAY[0], "--name", "lbroll")
    assert done.returncode == 1
    errors = done.stderr.strip().splitlines()
    assert errors[-1] == ("linkbridge: error: ports rx=2001 tx=2002: cannot bind UDP "
                          "127.0.0.1:2001: already in use")
    assert "Traceback" not in done.stderr
    assert "lbroll" not in devices(lab.a)
    assert "198.19.7.0/24" not in routed(lab.a)


def test_route_conflict_rolls_back_the_device(lab: TwoHosts) -> None:
    with LinkbridgeProcess(lab.a, ["tunnel", "--rx", "2001", "--tx", "2002", "--remote",
                                   "198.19.8.0/24", "--name", "lbfirst"], "first"):
        done = run_in(lab.a, "tunnel", "--rx", "2003", "--tx", "2004", "--remote", "198.19.8.0/24",
                      "--name", "lbsecond")
        assert done.returncode == 1
        assert "adding route to 198.19.8.0/24 via lbsecond failed" in done.stderr
        assert "lbsecond" not in devices(lab.a)
        assert "lbfirst" in devices(lab.a)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_removes_device_and_routes(lab: TwoHosts, sig: signal.Signals) -> None:
    tunnel = LinkbridgeProcess(lab.a, ["tunnel", "--rx", "2001", "--tx", "2002", "--remote",
                                       "198.19.9.0/24", "--address", OVERLAY[0],
                                       "--name", "lbsig"], "tunnel")
    with tunnel:
        assert "lbsig" in devices(lab.a)
        assert "198.19.9.0/24" in routed(lab.a)
        assert tunnel.stop(sig) == 0, tunnel.output()
    assert "lbsig" not in devices(lab.a)
    assert "198.19.9.0/24" not in routed(lab.a)
    assert tunnel.proc is not None and tunnel.proc.poll() == 0
    assert "Traceback" not in tunnel.output()


def auto_name(process: LinkbridgeProcess) -> str:
    match = re.search(r"linkbridge: (lb\d+) up:", process.output())
    assert match, process.output()
    return match.group(1)


def tunnel_on(ns_name: str, index: int) -> LinkbridgeProcess:
    args = ["tunnel", "--rx", str(3000 + 2 * index), "--tx", str(3001 + 2 * index),
            "--remote", f"198.19.{20 + index}.0/24"]
    return LinkbridgeProcess(ns_name, args, f"tunnel {index}")


def test_tunnels_taken_down_in_any_order(lab: TwoHosts) -> None:
    first, second = tunnel_on(lab.a, 1), tunnel_on(lab.a, 2)
    with first, second:
        names = auto_name(first), auto_name(second)
        assert names == ("lb0", "lb1")
        assert first.stop() == 0  # the older one first: no reverse-order rule
        assert devices(lab.a) >= {"lb1"}
        assert "lb0" not in devices(lab.a)
        assert "198.19.22.0/24" in routed(lab.a)
        assert "198.19.21.0/24" not in routed(lab.a)
        with tunnel_on(lab.a, 3) as third:
            assert auto_name(third) == "lb0"  # the first free name, not a count of devices
            assert second.stop() == 0
            assert "198.19.23.0/24" in routed(lab.a)
    assert not {"lb0", "lb1"} & devices(lab.a)
    assert not {"198.19.21.0/24", "198.19.22.0/24", "198.19.23.0/24"} & routed(lab.a)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["up", "--link", "udp:1.2.3.4:5?mut=1", "--remote", "198.19.0.2"],
         "did you mean 'mtu'"),
        (["up", "--link", "nope:x", "--remote", "198.19.0.2"], "unknown link scheme 'nope'"),
        (["up", "--rx", "2001", "--tx", "2002", "--remote", "198.19.0.300"], "bad remote"),
        (["up", "--rx", "2001", "--tx", "2002", "--mtu", "40"], "MTU 40 out of range"),
        (["up", "1", "2"], "positional form is"),
        (["up"], "give a link"),
        (["up", "--rx", "2001", "--tx", "2002", "--name", "x" * 16], "longer than 15"),
    ],
)
def test_bad_input_is_one_line(lab: TwoHosts, args: list[str], message: str) -> None:
    done = run_in(lab.a, *args)
    assert done.returncode in (1, 2)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert message in lines[0]
    assert devices(lab.a) == {"lo", lab.veth_a}
