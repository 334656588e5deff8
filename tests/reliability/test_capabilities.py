"""Only CAP_NET_ADMIN is needed: linkbridge started as `nobody` with that one capability works."""

from __future__ import annotations

import shutil

import pytest

from linkbridge.lab.probes import ping, tcp_transfer
from linkbridge.lab.processes import LinkbridgeProcess
from linkbridge.lab.run import TUN_NAME, tunnel_args
from linkbridge.lab.topology import OVERLAY, UNDERLAY, TwoHosts
from linkbridge.plugin.url import parse_link_url
from tests.helpers.namespace_state import devices, routed

NET_ADMIN_ONLY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                  "--inh-caps=-all,+net_admin", "--ambient-caps=-all,+net_admin",
                  "--bounding-set=-all,+net_admin"]
CAP_NET_ADMIN = 1 << 12
PORT = 47100


def effective_capabilities(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1], 16) for line in status if line.startswith("CapEff:"))


def side(ns_name: str, peer: str, local: str, remote: str) -> LinkbridgeProcess:
    args = tunnel_args(parse_link_url(f"udp:{peer}:{PORT}"), (), None, local, remote)
    return LinkbridgeProcess(ns_name, args, f"tunnel in {ns_name}", wrapper=NET_ADMIN_ONLY)


def test_tunnel_runs_with_net_admin_as_its_only_privilege(lab: TwoHosts) -> None:
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv (util-linux) to start a process with one capability")
    with side(lab.a, UNDERLAY[1], OVERLAY[0], OVERLAY[1]) as side_a, \
            side(lab.b, UNDERLAY[0], OVERLAY[1], OVERLAY[0]) as side_b:
        for process in (side_a, side_b):
            assert process.proc is not None
            assert effective_capabilities(process.proc.pid) == CAP_NET_ADMIN
        assert ping(lab.a, OVERLAY[1], count=5, interval=0.01).received == 5
        assert tcp_transfer(lab.b, OVERLAY[1], lab.a, 500_000).intact
    assert side_a.proc is not None and side_b.proc is not None
    assert (side_a.proc.returncode, side_b.proc.returncode) == (0, 0), side_a.output()
    for ns_name in (lab.a, lab.b):
        assert TUN_NAME not in devices(ns_name)
        assert not {f"{OVERLAY[0]}/32", f"{OVERLAY[1]}/32"} & routed(ns_name)
