"""`--user`: root only for set-up; the data path keeps working as an unprivileged user."""

from __future__ import annotations

import pwd

from linkbridge.lab.probes import ping, tcp_transfer
from linkbridge.lab.run import TUN_NAME, lab_tunnels
from linkbridge.lab.topology import OVERLAY, TwoHosts
from linkbridge.plugin.registry import LinkRegistry
from tests.helpers.commands import run_in
from tests.helpers.namespace_state import devices, routed


def uid_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("Uid:"))


def test_data_path_works_as_nobody_and_teardown_is_clean(lab: TwoHosts,
                                                         registry: LinkRegistry) -> None:
    nobody = pwd.getpwnam("nobody").pw_uid
    with lab_tunnels(lab, "udp", extra_args=["--user", "nobody"], registry=registry) as sides:
        assert all(side.proc is not None and uid_of(side.proc.pid) == nobody for side in sides)
        assert ping(lab.a, OVERLAY[1], count=5, interval=0.01).received == 5
        assert tcp_transfer(lab.b, OVERLAY[1], lab.a, 1_000_000).intact
    assert all(side.proc is not None and side.proc.returncode == 0 for side in sides)
    for ns_name in (lab.a, lab.b):
        assert TUN_NAME not in devices(ns_name)
        assert not {f"{OVERLAY[0]}/32", f"{OVERLAY[1]}/32"} & routed(ns_name)


def test_unknown_user_fails_before_setup(lab: TwoHosts) -> None:
    done = run_in(lab.a, "tunnel", "--rx", "2001", "--tx", "2002", "--remote", "198.19.3.0/24",
                  "--name", "lbusr", "--user", "no-such-user-x")
    assert done.returncode == 2
    assert done.stderr.strip() == "linkbridge: error: unknown user 'no-such-user-x' for --user"
    assert "lbusr" not in devices(lab.a)
