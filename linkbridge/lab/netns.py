"""Network namespaces: create, remove, and enter one in the current thread or a child process."""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator

from pyroute2 import netns as pr_netns

from linkbridge.errors import LinkbridgeError

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise LinkbridgeError(f"setns failed: {os.strerror(err)}")


def enter(name: str) -> None:
    """Move the calling thread (or a freshly forked child) into namespace `name` for good."""
    fd = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY)
    try:
        _setns(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def inside(name: str) -> Iterator[None]:
    """Run a block with the current thread in namespace `name`; sockets made there stay there."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        enter(name)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(own)


def create(name: str) -> None:
    try:
        pr_netns.create(name)
    except OSError as exc:
        raise LinkbridgeError(f"cannot create network namespace {name!r}: {exc}") from None


def remove(name: str) -> None:
    with contextlib.suppress(OSError, FileNotFoundError):
        pr_netns.remove(name)


def exists(name: str) -> bool:
    return os.path.exists(os.path.join(NETNS_DIR, name))
