"""`--user`: the account root drops to keeps the supplementary groups the group database gives
it, so a member of `dialout` can still open a serial device again after the drop."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from linkbridge.ops.privileges import drop_to, lookup_user


@contextlib.contextmanager
def group_with(member: str) -> Iterator[int]:
    """A new system group whose one member is `member`; its gid. Removed afterwards."""
    name = f"lbtest{os.getpid()}"
    subprocess.run(["groupadd", "--system", "--users", member, name], check=True,
                   capture_output=True)
    try:
        yield int(subprocess.run(["getent", "group", name], check=True, capture_output=True,
                                 text=True).stdout.split(":")[2])
    finally:
        subprocess.run(["groupdel", name], check=True, capture_output=True)


def opens_after_drop(user: str, path: Path) -> bool:
    """Whether a child that dropped to `user` can open `path` for reading and writing."""
    pid = os.fork()
    if pid == 0:  # the child: drop, try, report by exit code, leave at once
        code = 2
        try:
            drop_to(lookup_user(user))
            os.close(os.open(path, os.O_RDWR))
            code = 0
        except PermissionError:
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    assert code in (0, 1), f"the child failed before trying ({code})"
    return code == 0


@pytest.mark.usefixtures("root")
def test_the_dropped_account_keeps_its_supplementary_groups() -> None:
    with tempfile.TemporaryDirectory(prefix="lb-drop-") as directory, \
            group_with("nobody") as gid:
        Path(directory).chmod(0o755)  # pytest's tmp_path is under a 0700 directory
        device = Path(directory, "ttyFAKE")  # stands for /dev/ttyUSB0, root:dialout 0660
        device.write_bytes(b"")
        os.chown(device, 0, gid)
        device.chmod(0o660)
        assert opens_after_drop("nobody", device)
        device.chmod(0o600)  # and the check can fail: without the group's bits, no access
        assert not opens_after_drop("nobody", device)
