"""`linkbridge genkey`/`pubkey`/`genpsk` run as commands: fresh 32-byte keys, RFC 7748's public
key, a warning for a key file others can read, one-line errors (tests/unit/test_keys.py has
the key files, options and config keys)."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

from linkbridge.ops.keys import new_private_key, public_key_of

RFC7748_PRIVATE = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
RFC7748_PUBLIC = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"


def b64(hex_text: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_text)).decode()


def linkbridge(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "linkbridge", *args], input=stdin,
                          capture_output=True, text=True, timeout=30)


def test_pubkey_matches_rfc7748() -> None:
    done = linkbridge("pubkey", stdin=b64(RFC7748_PRIVATE) + "\n")
    assert done.returncode == 0 and done.stdout.strip() == b64(RFC7748_PUBLIC), done.stderr


def test_genkey_and_genpsk_print_fresh_32_byte_keys() -> None:
    keys = {linkbridge(command).stdout.strip() for command in ("genkey", "genkey", "genpsk")}
    assert len(keys) == 3
    assert all(len(base64.b64decode(key, validate=True)) == 32 for key in keys)


def test_genkey_warns_about_a_file_others_can_read(tmp_path: Path) -> None:
    out = tmp_path / "key"
    with out.open("w") as stream:
        out.chmod(0o644)
        done = subprocess.run([sys.executable, "-m", "linkbridge", "genkey"], stdout=stream,
                              stderr=subprocess.PIPE, text=True, timeout=30)
    assert done.returncode == 0 and "readable by group or others" in done.stderr


def test_pubkey_of_garbage_is_one_line_error() -> None:
    done = linkbridge("pubkey", stdin="not a key\n")
    assert done.returncode == 2
    assert done.stderr.strip() == "linkbridge: error: the private key is not base64"


def test_link_command_takes_the_same_options(tmp_path: Path) -> None:
    open_key = tmp_path / "open.key"
    open_key.write_text(new_private_key())
    open_key.chmod(0o644)
    done = linkbridge("link", "udp:198.18.0.2:5555", "--rx", "2001", "--tx", "2002",
                      "--private-key", str(open_key), "--peer-public-key",
                      public_key_of(new_private_key()))
    assert done.returncode == 2
    assert done.stderr.strip().startswith(f"linkbridge: error: private key file {open_key} is "
                                          "accessible by group or others"), done.stderr



def test_a_low_order_peer_key_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """The issue's crash, as a process: a low-order peer public key is a configuration error
    (tests/unit/test_keys.py runs every invalid-key case in process)."""
    mine = tmp_path / "a.key"
    mine.write_text(new_private_key() + "\n")
    mine.chmod(0o600)
    done = linkbridge("up", "--link", "udp:198.18.0.2:5555", "--remote", "198.19.9.9",
                      "--private-key", str(mine), "--peer-public-key", b64("00" * 32))
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("linkbridge: error: the peer public key ") and "low-order" in line
