"""The TOML config file: keys mirror `up`'s options, several tunnels, key paths in errors."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from linkbridge.cli.installed import InstalledPlugins
from linkbridge.cli.parser import build_parser
from linkbridge.cli.up import config_checks, up_tunnels
from linkbridge.errors import ConfigError
from linkbridge.ops.config import apply_command_line, load_config, parse_config, subparser
from linkbridge.plugin.registry import LinkRegistry, get_plugin_manager

TWO = """
user = "nobody"
mtu = 1400

[[tunnel]]
name = "lbalice"
link = "udp:203.0.113.7:5555"
remote = ["10.0.2.0/24", "10.0.3.1"]
address = "10.0.1.2/24"

[[tunnel]]
name = "lbports"
rx = 2001
tx = 2002
remote = "10.9.0.0/16"
mtu = 1200
"""


@pytest.fixture(scope="module")
def up() -> argparse.ArgumentParser:
    return subparser(build_parser(), "up")


def parse(text: str, up: argparse.ArgumentParser) -> list[argparse.Namespace]:
    checks = config_checks(LinkRegistry(get_plugin_manager()))
    return [tunnel.args for tunnel in parse_config(text, "t.toml", up, checks)]


def test_two_tunnels_with_shared_top_level_keys(up: argparse.ArgumentParser) -> None:
    alice, ports = parse(TWO, up)
    assert (alice.name, alice.link, alice.mtu, alice.user) == (
        "lbalice", ["udp:203.0.113.7:5555"], 1400, "nobody")
    assert alice.remote == ["10.0.2.0/24", "10.0.3.1"]
    assert alice.address == ["10.0.1.2/24"]
    assert (ports.rx, ports.tx, ports.mtu, ports.remote) == (2001, 2002, 1200, ["10.9.0.0/16"])
    assert ports.link == []
    assert ports.via == []  # untouched options keep the command line's defaults


def test_top_level_alone_is_one_tunnel(up: argparse.ArgumentParser) -> None:
    [only] = parse('link = "udp:198.18.0.2:5555"\nremote = "198.19.0.2"\n', up)
    assert only.link == ["udp:198.18.0.2:5555"]


def test_underscores_or_dashes(up: argparse.ArgumentParser) -> None:
    [only] = parse('rx = 1\ntx = 2\nfragment_timeout = 1.5\npcap-limit = 1000\n', up)
    assert only.fragment_timeout == 1.5
    assert only.pcap_limit == 1000


@pytest.mark.parametrize(("text", "message"), [
    ('[[tunnel]]\nrx=1\ntx=2\n[[tunnel]]\nlink = "nope:x"\n',
     "tunnel[1].link: unknown link scheme 'nope'"),
    ('[[tunnel]]\nlink = "udp:1.2.3.4:5?mut=1"\n', "tunnel[0].link: link udp:1.2.3.4:5?mut=1: "
                                                  "unknown option "
                                                  "'mut' (did you mean 'mtu'?)"),
    ('[[tunnel]]\nmtu = "big"\n', "tunnel[0].mtu: bad value 'big'"),
    ('[[tunnel]]\nmtu = true\n', "tunnel[0].mtu: expected a number, not bool True"),
    ('[[tunnel]]\nremote = ["10.0.0.0/8", "10.0.0.300"]\n', "tunnel[0].remote[1]: bad remote"),
    ('[[tunnel]]\nrx = 70000\n', "tunnel[0].rx: bad value 70000: port 70000 out of range"),
    ('[[tunnel]]\nremtoe = "10.0.0.1"\n', "tunnel[0].remtoe: unknown key (did you mean "
                                         "'remote'?)"),
    ('mtu = 1400\nmut = 1\n', "mut: unknown key (did you mean 'mtu'?)"),
    ('[[tunnel]]\nfragment = "sometimes"\n', "tunnel[0].fragment: 'sometimes' is not one of"),
    ('[[tunnel]]\nremote = { a = 1 }\n', "tunnel[0].remote: expected a string, not dict"),
    ("tunnel = 5\n", "t.toml: tunnel: expected [[tunnel]] tables"),
    ("tunnel = []\n", "t.toml: tunnel: no tunnels"),
    ("mtu = \n", "t.toml: not valid TOML"),
])
def test_errors_name_the_key_path(up: argparse.ArgumentParser, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(text, up)
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


def test_command_line_overrides_every_tunnel(up: argparse.ArgumentParser) -> None:
    tunnels = parse_config(TWO, "t.toml", up)
    given = up.parse_args(["--mtu", "1300", "--remote", "10.7.0.0/16"])
    alice, ports = (t.args for t in apply_command_line(tunnels, given, up))
    assert alice.mtu == ports.mtu == 1300
    assert alice.remote == ports.remote == ["10.7.0.0/16"]
    assert alice.name == "lbalice"  # not given: the file's


@pytest.mark.parametrize("option", [["--name", "x"], ["--link", "udp:1.2.3.4:5"],
                                    ["--pcap", "/tmp/x.pcap"], ["--rx", "5"]])
def test_per_tunnel_options_refused_for_several(up: argparse.ArgumentParser,
                                               option: list[str]) -> None:
    tunnels = parse_config(TWO, "t.toml", up)
    with pytest.raises(ConfigError, match=f"{option[0]} on the command line would apply to all 2"):
        apply_command_line(tunnels, up.parse_args(option), up)


def test_per_tunnel_option_fine_for_one(up: argparse.ArgumentParser) -> None:
    [one] = parse_config('rx = 1\ntx = 2\n', "t.toml", up)
    [result] = apply_command_line([one], up.parse_args(["--name", "lbx"]), up)
    assert result.args.name == "lbx"


def test_missing_and_binary_files(tmp_path: Path, up: argparse.ArgumentParser) -> None:
    base = tmp_path
    with pytest.raises(ConfigError, match=r"cannot read config file .*No such file"):
        load_config(str(base / "absent.toml"), up)
    (base / "bin.toml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(str(base / "bin.toml"), up)


@pytest.mark.parametrize(("text", "message"), [
    ('backend = "fou"\nrx = 1\ntx = 2\n', "backend: config files run TUN tunnels only"),
    ('[[tunnel]]\nrx = 1\ntx = 2\n[[tunnel]]\nbackend = "fou"\n',
     "tunnel[1].backend: config files run TUN tunnels only"),
])
def test_kernel_backend_refused_in_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "k.toml"
    path.write_text(text)
    args = build_parser().parse_args(["up", "-c", str(path)])
    with pytest.raises(ConfigError, match=re.escape(message)):
        up_tunnels(args, InstalledPlugins(get_plugin_manager))
