"""Status with `--user`: the socket belongs to that user, works after the drop, and other
users cannot read it."""

from __future__ import annotations

import os
import pwd

from linkbridge.lab.probes import ping
from linkbridge.lab.run import lab_tunnels
from linkbridge.lab.topology import OVERLAY, TwoHosts
from linkbridge.ops.status import collect
from linkbridge.plugin.registry import LinkRegistry
from tests.helpers.commands import status_json


def tunnels_seen_as(user: pwd.struct_passwd) -> int:
    """How many tunnels `linkbridge status` finds for `user` (in a forked child: this venv's
    interpreter may not be executable by that user)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become the user, collect, report the count, leave at once
        code = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
            os.write(write_end, str(len(collect())).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as result:
        answer = result.read()
    _, wait_status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(wait_status) == 0
    return int(answer)


def test_status_after_privilege_drop(lab: TwoHosts, run_dir: os.PathLike[str],
                                     registry: LinkRegistry) -> None:
    nobody = pwd.getpwnam("nobody")
    with lab_tunnels(lab, "udp", extra_args=["--user", "nobody"], registry=registry):
        assert ping(lab.a, OVERLAY[1], count=3, interval=0.01).received == 3
        owner_dir = os.path.join(run_dir, str(nobody.pw_uid))
        info = os.stat(owner_dir)
        assert (info.st_uid, info.st_mode & 0o777) == (nobody.pw_uid, 0o700)
        for name in os.listdir(owner_dir):
            assert os.stat(os.path.join(owner_dir, name)).st_uid == nobody.pw_uid
        documents = status_json()  # root reads them
        assert len(documents) == 2
        assert {doc["uid"] for doc in documents} == {nobody.pw_uid}
        assert min(doc["tunnel"]["rx_packets"] for doc in documents) >= 3
        assert tunnels_seen_as(nobody) == 2  # its own tunnels
        assert tunnels_seen_as(pwd.getpwnam("daemon")) == 0  # not another user's
    assert os.listdir(owner_dir) == []  # removed on exit, although no longer root
