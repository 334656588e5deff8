"""Keys of the encrypt layer: `genkey`/`pubkey`/`genpsk`, key files, the options and config keys
that turn encryption on (linkbridge/ops/keys.py, linkbridge/cli/keys.py, cli/up.py)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from linkbridge.cli import main as cli
from linkbridge.cli.installed import InstalledPlugins
from linkbridge.cli.options import UpOptions
from linkbridge.cli.parser import build_parser
from linkbridge.cli.up import plan_up
from linkbridge.datapath.encrypting import allowed_ciphers
from linkbridge.errors import ConfigError
from linkbridge.ops.config import parse_config, subparser
from linkbridge.ops.keys import load_keys, new_private_key, public_key_of, read_secret
from linkbridge.plugin.registry import get_plugin_manager
from linkbridge.wire.secure import AES_256_GCM, CHACHA20_POLY1305, OVERHEAD

CHACHA = frozenset({CHACHA20_POLY1305})

# RFC 7748, section 6.1: Alice's private and public key
RFC7748_PRIVATE = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
RFC7748_PUBLIC = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"


def b64(hex_text: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_text)).decode()


def test_public_key_of_matches_rfc7748() -> None:
    assert public_key_of(b64(RFC7748_PRIVATE)) == b64(RFC7748_PUBLIC)


def key_file(directory: Path, name: str, text: str, mode: int = 0o600) -> str:
    path = directory / name
    path.write_text(text)
    path.chmod(mode)
    return str(path)


def test_key_files_open_to_others_are_refused(tmp_path: Path) -> None:
    private = new_private_key()
    for mode in (0o644, 0o640, 0o604, 0o660):
        path = key_file(tmp_path, f"k{mode:o}", private, mode)
        with pytest.raises(ConfigError, match=r"accessible by group or others .*chmod 600"):
            read_secret(path, "private key")
    good = key_file(tmp_path, "good", private + "\n", 0o600)
    assert base64.b64encode(read_secret(good, "private key")).decode() == private
    link = tmp_path / "link"
    link.symlink_to(good)
    with pytest.raises(ConfigError, match="symbolic link"):
        read_secret(str(link), "private key")
    with pytest.raises(ConfigError, match="cannot read private key file"):
        read_secret(str(tmp_path / "missing"), "private key")
    with pytest.raises(ConfigError, match="not a regular file"):
        read_secret(str(tmp_path), "private key")


def test_bad_keys_are_one_line_errors(tmp_path: Path) -> None:
    private = key_file(tmp_path, "a.key", new_private_key())
    short = key_file(tmp_path, "short.key", base64.b64encode(bytes(16)).decode())
    with pytest.raises(ConfigError, match="16 bytes, not 32"):
        load_keys(short, public_key_of(new_private_key()), None, CHACHA)
    with pytest.raises(ConfigError, match="--peer-public-key is not base64"):
        load_keys(private, "nope!", None, CHACHA)
    own = public_key_of(Path(private).read_text())
    with pytest.raises(ConfigError, match="own public key"):
        load_keys(private, own, None, CHACHA)


@pytest.fixture(scope="module")
def plugins() -> InstalledPlugins:
    return InstalledPlugins(get_plugin_manager)


def up_options(*args: str) -> UpOptions:
    return UpOptions.from_args(build_parser().parse_args(["up", *args]))


def test_encryption_options_plan_the_layer_and_the_mtu(tmp_path: Path,
                                                       plugins: InstalledPlugins) -> None:
    private = key_file(tmp_path, "a.key", new_private_key())
    peer = public_key_of(new_private_key())
    keys = ["--private-key", private, "--peer-public-key", peer]
    plain = plan_up(up_options("--link", "udp:198.18.0.2:5555"), plugins)
    sealed = plan_up(up_options("--link", "udp:198.18.0.2:5555", *keys), plugins)
    assert sealed.spec.mtu == plain.spec.mtu - OVERHEAD
    radio = plan_up(up_options("--link", "udp:198.18.0.2:5555?mtu=1000", *keys), plugins)
    assert radio.spec.mtu == 1000 - OVERHEAD
    assert radio.pipeline.fragment_frame is None
    assert radio.pipeline.description.upper.encrypt is not None
    # a tunnel MTU the link cannot carry with the overhead is fragmented
    split = plan_up(up_options("--link", "udp:198.18.0.2:5555?mtu=1000", "--mtu", "1000",
                               *keys), plugins)
    assert split.pipeline.fragment_frame == 1000


def test_offload_chunks_leave_room_for_the_overhead(tmp_path: Path,
                                                    plugins: InstalledPlugins) -> None:
    private = key_file(tmp_path, "a.key", new_private_key())
    keys = ["--private-key", private, "--peer-public-key", public_key_of(new_private_key())]
    for offload in ("on", "auto"):
        sealed = plan_up(up_options("--link", "udp:198.18.0.2:5555", "--offload", offload,
                                    *keys), plugins)
        assert sealed.pipeline.offload_frame == sealed.spec.mtu == 1472 - OVERHEAD
        radio = plan_up(up_options("--link", "udp:198.18.0.2:5555?mtu=1000", "--mtu", "1400",
                                   "--offload", offload, *keys), plugins)
        assert radio.pipeline.offload_frame == 1000 - OVERHEAD
        assert radio.pipeline.fragment_frame is None
    narrow = ["--link", "udp:198.18.0.2:5555?mtu=590", *keys]
    auto = plan_up(up_options(*narrow, "--offload", "auto"), plugins)
    assert auto.pipeline.offload_frame is None
    plain = plan_up(up_options(*narrow[:2], "--offload", "on"), plugins)
    assert plain.pipeline.offload_frame == 590
    with pytest.raises(ConfigError, match="link frames under 596 bytes with encryption"):
        plan_up(up_options(*narrow, "--offload", "on"), plugins)


@pytest.mark.parametrize(("args", "message"), [
    (["--private-key", "K"], "needs both --private-key and --peer-public-key"),
    (["--peer-public-key", "K"], "needs both"),
    (["--preshared-key", "K"], "needs both"),
    (["--private-key", "K", "--peer-public-key", "K", "--rekey-interval", "4"],
     "cannot read private key file K"),
])
def test_incomplete_encryption_options_are_refused(plugins: InstalledPlugins, args: list[str],
                                                   message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        plan_up(up_options("--link", "udp:198.18.0.2:5555", *args), plugins)


def test_timers_are_checked(tmp_path: Path, plugins: InstalledPlugins) -> None:
    private = key_file(tmp_path, "a.key", new_private_key())
    keys = ["--private-key", private, "--peer-public-key", public_key_of(new_private_key())]
    with pytest.raises(ConfigError, match="handshake retry"):
        plan_up(up_options("--link", "udp:198.18.0.2:5555", *keys, "--rekey-interval", "4"),
                plugins)
    with pytest.raises(ConfigError, match="rekey after"):
        plan_up(up_options("--link", "udp:198.18.0.2:5555", *keys, "--rekey-packets", "0"),
                plugins)


def test_encryption_needs_a_link(plugins: InstalledPlugins) -> None:
    with pytest.raises(ConfigError, match="encryption needs a link"):
        plan_up(up_options("--rx", "2001", "--tx", "2002", "--private-key", "K"), plugins)


def test_config_file_keys(tmp_path: Path) -> None:
    up = subparser(build_parser(), "up")
    tunnels = parse_config(
        'private-key = "/etc/linkbridge/a.key"\n'
        '[[tunnel]]\nlink = "udp:198.18.0.2:5555"\npeer-public-key = "QUJD"\n'
        'rekey-interval = 600\nhandshake_retry = 30\ncipher = "aes-256-gcm"\n', "test.toml", up)
    args = tunnels[0].args
    assert (args.private_key, args.peer_public_key, args.rekey_interval,
            args.handshake_retry, args.cipher) == ("/etc/linkbridge/a.key", "QUJD", 600.0, 30.0,
                                                   AES_256_GCM)
    with pytest.raises(ConfigError, match=r"tunnel\[0\]\.rekey-interval"):
        parse_config('[[tunnel]]\nrekey-interval = -1\n', "test.toml", up)
    with pytest.raises(ConfigError, match=r"tunnel\[0\]\.cipher"):
        parse_config('[[tunnel]]\ncipher = "rot13"\n', "test.toml", up)


def test_auto_offers_every_cipher_and_a_name_only_that_one() -> None:
    assert allowed_ciphers("auto") == {AES_256_GCM, CHACHA20_POLY1305}
    assert allowed_ciphers(AES_256_GCM) == {AES_256_GCM}
    assert allowed_ciphers(CHACHA20_POLY1305) == {CHACHA20_POLY1305}


def test_cipher_option_is_checked_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["up", "--link", "udp:", "--cipher", "rot13"])
    assert "--cipher" in capsys.readouterr().err


def test_every_invalid_key_is_one_line_and_exit_2(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Keys no handshake could use stop `up` before anything is made: status 2, one line
    that says what to do, no traceback."""
    private = new_private_key()
    mine = tmp_path / "a.key"
    mine.write_text(private + "\n")
    mine.chmod(0o600)
    zero = tmp_path / "zero.psk"
    zero.write_text(b64("00" * 32) + "\n")
    zero.chmod(0o600)
    others = tmp_path / "nobody.key"
    others.write_text(private + "\n")
    others.chmod(0o600)
    if os.geteuid() == 0:
        os.chown(others, 65534, 65534)  # nobody
    peer = public_key_of(new_private_key())
    cases = {
        "low-order point": ("--peer-public-key", b64("01" + "00" * 31)),
        "not a Curve25519 public key": ("--peer-public-key", b64("ff" * 32)),
        "this side's own public key": ("--peer-public-key", public_key_of(private)),
        "is 31 bytes": ("--peer-public-key", base64.b64encode(bytes(31)).decode()),
        "all zeros": ("--peer-public-key", peer, "--preshared-key", str(zero)),
        "holds this side's private key": ("--peer-public-key", peer, "--preshared-key",
                                          str(mine)),
    }
    if os.geteuid() == 0:
        cases[f"run `chown root {others}`"] = ("--peer-public-key", peer, "--private-key",
                                               str(others))
    for expected, options in cases.items():
        status = cli.main(["up", "--link", "udp:198.18.0.2:5555", "--remote", "198.19.9.9",
                           "--private-key", str(mine), *options])
        err = capsys.readouterr().err
        assert status == 2, (expected, err)
        [line] = err.strip().splitlines()
        assert line.startswith("linkbridge: error: ") and expected in line, (expected, line)
