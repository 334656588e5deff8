"""Fuzzing the config loader: whatever the file holds, the only error is a ConfigError."""

from __future__ import annotations

import argparse
import tomllib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkbridge.cli.parser import build_parser
from linkbridge.cli.up import config_checks
from linkbridge.errors import ConfigError
from linkbridge.ops.config import apply_command_line, keys_of, parse_config, subparser
from linkbridge.plugin.registry import LinkRegistry, get_plugin_manager

UP = subparser(build_parser(), "up")
CHECKS = config_checks(LinkRegistry(get_plugin_manager()))
KEYS = [*sorted(keys_of(UP)), "tunnel", "remtoe", "x"]

scalars = st.one_of(
    st.booleans(), st.integers(min_value=-2**63, max_value=2**63 - 1),
    st.floats(allow_nan=False), st.text(max_size=30),
    st.sampled_from(["udp:198.18.0.2:5555", "udp:?mtu=1", "10.0.0.0/8", "fd00::1/64", "auto",
                     "nope:x", "1e9", "-1", "0x10", "40ms", "udp:[::1]:5?bind=[::]:5"]),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4), max_leaves=8)
tables = st.dictionaries(st.sampled_from(KEYS), values, max_size=6)
documents = st.one_of(tables, st.builds(lambda top, tunnels: {**top, "tunnel": tunnels},
                                        tables, st.lists(tables, max_size=3)))


def escape(char: str) -> str:
    if char in '"\\':
        return "\\" + char
    return f"\\u{ord(char):04x}" if ord(char) < 0x20 or char == "\x7f" else char


def dump(document: dict[str, Any]) -> str:
    """A small TOML writer (inline tables and arrays are enough to reach every code path)."""

    def value(item: Any) -> str:
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, int | float):
            return repr(item) if item == item and abs(item) != float("inf") else "0"
        if isinstance(item, str):
            return '"' + "".join(escape(char) for char in item) + '"'
        if isinstance(item, list):
            return "[" + ", ".join(map(value, item)) + "]"
        return "{" + ", ".join(f'"{k}" = {value(v)}' for k, v in item.items()) + "}"

    return "\n".join(f'"{key}" = {value(item)}' for key, item in document.items())


def load(text: str) -> None:
    try:
        tunnels = parse_config(text, "fuzz.toml", UP, CHECKS)
        apply_command_line(tunnels, UP.parse_args([]), UP)
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc).strip()


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)  # a busy CI machine
@given(documents)
def test_structured_documents_only_raise_config_errors(document: dict[str, Any]) -> None:
    text = dump(document)
    assert tomllib.loads(text) is not None  # the writer is right, so the loader's logic is hit
    load(text)


@settings(deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_only_raises_config_errors(text: str) -> None:
    load(text)


@settings(deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_only_raise_config_errors(data: bytes) -> None:
    load(data.decode("utf-8", errors="surrogateescape"))


def test_namespace_shape_matches_the_command_line() -> None:
    [tunnel] = parse_config('link = "udp:198.18.0.2:5555"\n', "t.toml", UP, CHECKS)
    assert isinstance(tunnel.args, argparse.Namespace)
    assert vars(tunnel.args).keys() == vars(UP.parse_args([])).keys()
