"""Key files of the encrypt layer: base64 text as `linkbridge genkey` / `genpsk` write it,
refused, as ssh refuses its keys, unless owned by the running user or root and closed to group
and others."""

from __future__ import annotations

import errno
import os
import pwd
import stat

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from linkbridge.errors import ConfigError
from linkbridge.wire.keys import StaticKeys, check_psk, decode_key, encode_key
from linkbridge.wire.noise import KEY_SIZE, ZERO_PSK, public_bytes

MAX_KEY_FILE = 1024  # bytes: a key file is one line of base64


def read_secret(path: str, what: str) -> bytes:
    """The 32-byte key in the file at `path`; ConfigError when it cannot be read, is open to
    group or others, or holds no key."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError(f"{what} file {path} is a symbolic link: give the file itself"
                              ) from None
        raise ConfigError(f"cannot read {what} file {path}: {exc.strerror}") from None
    try:
        check_key_file(os.fstat(fd), path, what)
        data = os.read(fd, MAX_KEY_FILE + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_KEY_FILE:
        raise ConfigError(f"{what} file {path} is too long for a key")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise ConfigError(f"{what} file {path} is not base64 text") from None
    return decode_key(text, f"{what} file {path}")


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def check_key_file(info: os.stat_result, path: str, what: str) -> None:
    """ConfigError unless the file is a regular one that the running user or root owns and
    that group and others cannot access; the error says how to fix it."""
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{what} file {path} is not a regular file")
    me = os.geteuid()
    if info.st_uid not in (me, 0):
        raise ConfigError(f"{what} file {path} is owned by {user_name(info.st_uid)}, not by "
                          f"this user ({user_name(me)}) or root: run `chown {user_name(me)} "
                          f"{path}`")
    if info.st_mode & 0o077:
        raise ConfigError(f"{what} file {path} is accessible by group or others (mode "
                          f"{stat.S_IMODE(info.st_mode):04o}): run `chmod 600 {path}`")


def load_keys(private_key: str, peer_public_key: str, preshared_key: str | None,
              ciphers: frozenset[str]) -> StaticKeys:
    """This side's keys from the options (file, base64 value, optional file) and the
    transport ciphers it allows."""
    private = X25519PrivateKey.from_private_bytes(read_secret(private_key, "private key"))
    peer = decode_key(peer_public_key, "--peer-public-key")
    psk = ZERO_PSK
    if preshared_key:
        psk = read_secret(preshared_key, "pre-shared key")
        check_psk(psk, private)
    return StaticKeys(private, peer, psk, ciphers)


def new_private_key() -> str:
    """A new X25519 private key, base64."""
    return encode_key(os.urandom(KEY_SIZE))


def new_preshared_key() -> str:
    return encode_key(os.urandom(KEY_SIZE))


def public_key_of(text: str) -> str:
    """The base64 public key of a base64 private key; ConfigError when it is none."""
    private = X25519PrivateKey.from_private_bytes(decode_key(text, "the private key"))
    return encode_key(public_bytes(private))
