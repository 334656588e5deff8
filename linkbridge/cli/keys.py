"""`genkey`, `pubkey`, `genpsk`: the keys of the encrypt layer, as base64 lines."""

from __future__ import annotations

import argparse
import logging
import os
import stat
import sys

from linkbridge.cli.installed import InstalledPlugins
from linkbridge.errors import ConfigError
from linkbridge.ops.keys import MAX_KEY_FILE, new_preshared_key, new_private_key, public_key_of

log = logging.getLogger("linkbridge")


def _print_secret(key: str) -> None:
    """Print a secret key; warn when stdout is a file that group or others may read."""
    mode = os.fstat(sys.stdout.fileno()).st_mode
    if stat.S_ISREG(mode) and mode & 0o077:
        log.warning("writing a secret key to a file readable by group or others; `up` "
                    "refuses such files (use umask 077, or chmod 600 the file)")
    print(key, flush=True)


def cmd_genkey(args: argparse.Namespace, plugins: InstalledPlugins) -> None:
    """`genkey`: a new private key."""
    _print_secret(new_private_key())


def cmd_genpsk(args: argparse.Namespace, plugins: InstalledPlugins) -> None:
    """`genpsk`: a new pre-shared key."""
    _print_secret(new_preshared_key())


def cmd_pubkey(args: argparse.Namespace, plugins: InstalledPlugins) -> None:
    """`pubkey`: the public key of the private key on stdin."""
    text = sys.stdin.read(MAX_KEY_FILE + 1)
    if len(text) > MAX_KEY_FILE:
        raise ConfigError("stdin is too long for a private key")
    print(public_key_of(text), flush=True)
