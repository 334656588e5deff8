"""Dropping root after the device and routes exist: the open fds keep the data path working."""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass

from linkbridge.errors import ConfigError, LinkbridgeError


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int


def lookup_user(name: str) -> Account:
    """Resolve a user before any set-up, so a typo fails before anything is created."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ConfigError(f"unknown user {name!r} for --user") from None
    return Account(name, entry.pw_uid, entry.pw_gid)


def drop_to(account: Account) -> None:
    """Become `account` for good: its groups from the group database (so that a member of
    `dialout` can still reopen a serial device that comes back), its gid, then its uid."""
    try:
        os.initgroups(account.name, account.gid)
        os.setgid(account.gid)
        os.setuid(account.uid)
    except PermissionError:
        raise LinkbridgeError(f"cannot switch to user {account.name!r}: not permitted") from None
