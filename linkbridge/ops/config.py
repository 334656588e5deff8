"""`linkbridge up -c FILE`: tunnels described in a TOML file with the command line's keys.

The valid keys, their types and defaults come from the `up` command's own argparse options,
so every option of `up` (present and future) is a key: `link`, `remote`, `address`, `mtu`,
`name`, `via`, `rx`, `tx`, `host`, `user`, `pcap`, ... A `peer` may also be a table
(`[[peer]]`, or `[[tunnel.peer]]` in a tunnel: docs/multipoint.md). Top-level keys apply to
every tunnel; each `[[tunnel]]` table is one tunnel (without any, the top level is the one
tunnel). Options given on the command line override the file. Errors name the key path:
`tunnel[1].mtu: ...`.
"""

from __future__ import annotations

import argparse
import copy
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from linkbridge.errors import ConfigError
from linkbridge.plugin.options import close_match_hint
from linkbridge.wire.peers import peer_text

Check = Callable[[Any], object]
NOT_KEYS = {"help", "legacy", "config"}
PER_TUNNEL = {"name", "rx", "tx", "link", "pcap", "peer"}  # meaningless for several tunnels
# keys whose items may be tables (`[[peer]]`, `[[tunnel.peer]]`): each becomes the option's text
TABLE_ITEMS: dict[str, Callable[[Mapping[str, Any], str], str]] = {"peer": peer_text}


@dataclass(frozen=True)
class Key:
    """One config key: the argparse option it mirrors."""

    name: str
    action: argparse.Action

    @property
    def dest(self) -> str:
        return self.action.dest

    @property
    def is_list(self) -> bool:
        return isinstance(self.action, argparse._AppendAction)

    @property
    def is_flag(self) -> bool:
        return isinstance(self.action, argparse._StoreTrueAction | argparse._StoreFalseAction)


@dataclass(frozen=True)
class TunnelConfig:
    """One tunnel from the file: where it came from (`tunnel[0]`, or "" for the top level)
    and its `up` arguments."""

    label: str
    args: argparse.Namespace


def subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    """The parser of one sub-command (`up`) of the main parser."""
    for action in parser._actions:  # argparse offers no public way to reach sub-parsers
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            found: argparse.ArgumentParser = action.choices[command]
            return found
    raise LookupError(f"no sub-command {command!r}")


def keys_of(parser: argparse.ArgumentParser) -> dict[str, Key]:
    """Config keys for every long option of `parser` (`--fragment-timeout` -> fragment-timeout)."""
    keys = {}
    for action in parser._actions:  # argparse offers no public way to list its options
        longs = [opt for opt in action.option_strings if opt.startswith("--")]
        if not longs or action.dest in NOT_KEYS:
            continue
        keys[longs[0][2:]] = Key(longs[0][2:], action)
    return keys


def _scalar(key: Key, value: Any, path: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ConfigError(f"{path}: expected a {'number' if key.action.type else 'string'}, "
                          f"not {type(value).__name__} {value!r}")
    convert = key.action.type
    try:
        result = convert(str(value)) if callable(convert) else str(value)
    except (ValueError, TypeError, argparse.ArgumentTypeError) as exc:
        raise ConfigError(f"{path}: bad value {value!r}: {exc}") from None
    choices = key.action.choices
    if choices is not None and result not in choices:
        raise ConfigError(f"{path}: {value!r} is not one of {', '.join(map(str, choices))}"
                          f"{close_match_hint(str(value), map(str, choices))}")
    return result


def convert_value(key: Key, value: Any, path: str, checks: Mapping[str, Check]) -> Any:
    """A TOML value as the `up` option would hold it after parsing, or ConfigError at `path`."""
    if key.is_flag:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, not {value!r}")
        return value
    check = checks.get(key.name)
    if key.is_list:
        items = value if isinstance(value, list) else [value]
        converted = []
        for index, item in enumerate(items):
            item_path = f"{path}[{index}]" if isinstance(value, list) else path
            table_item = TABLE_ITEMS.get(key.name)
            if table_item is not None and isinstance(item, dict):
                item = table_item(item, item_path)
            result = _scalar(key, item, item_path)
            _checked(check, result, item_path)
            converted.append(result)
        return converted
    result = _scalar(key, value, path)
    _checked(check, result, path)
    return result


def _checked(check: Check | None, value: Any, path: str) -> None:
    if check is None:
        return
    try:
        check(value)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _table_values(table: Mapping[str, Any], prefix: str, keys: Mapping[str, Key],
                  checks: Mapping[str, Check], skip: Sequence[str] = ()) -> dict[str, Any]:
    values = {}
    for raw_name, value in table.items():
        if raw_name in skip:
            continue
        name = raw_name.replace("_", "-")
        path = f"{prefix}{raw_name}"
        if name not in keys:
            valid = ", ".join(sorted(keys))
            raise ConfigError(f"{path}: unknown key{close_match_hint(name, keys)}; "
                              f"valid keys: {valid}")
        values[keys[name].dest] = convert_value(keys[name], value, path, checks)
    return values


def parse_config(text: str, source: str, parser: argparse.ArgumentParser,
                 checks: Mapping[str, Check] | None = None) -> list[TunnelConfig]:
    """The tunnels a TOML document describes, each as the Namespace `parser` would produce.

    `parser` is the `up` command's parser (its options are the keys); `checks` validate values
    further (a link URL against the installed links) and raise ConfigError.
    """
    checks = checks or {}
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    keys = keys_of(parser)
    shared = _table_values(document, "", keys, checks, skip=("tunnel",))
    tables = document.get("tunnel", [{}] if "tunnel" not in document else None)
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{source}: tunnel: expected [[tunnel]] tables")
    if not tables:
        raise ConfigError(f"{source}: tunnel: no tunnels")
    defaults = parser.parse_args([])
    tunnels = []
    for index, table in enumerate(tables):
        label = f"tunnel[{index}]" if "tunnel" in document else ""
        prefix = f"{label}." if label else ""
        args = copy.deepcopy(defaults)
        for dest, value in {**shared, **_table_values(table, prefix, keys, checks)}.items():
            setattr(args, dest, value)
        tunnels.append(TunnelConfig(label, args))
    return tunnels


def load_config(path: str, parser: argparse.ArgumentParser,
                checks: Mapping[str, Check] | None = None) -> list[TunnelConfig]:
    """Read and parse the config file at `path`."""
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    return parse_config(text, path, parser, checks)


def apply_command_line(tunnels: list[TunnelConfig], given: argparse.Namespace,
                       parser: argparse.ArgumentParser) -> list[TunnelConfig]:
    """Override every tunnel's values with the options given on the command line.

    An option counts as given when its value differs from the parser's default. Per-tunnel
    options (`--name`, `--link`, `--rx`, `--tx`, `--pcap`) are refused for several tunnels.
    """
    defaults = parser.parse_args([])
    overrides = {}
    for key in keys_of(parser).values():
        value = getattr(given, key.dest, None)
        if value != getattr(defaults, key.dest, None):
            if key.name in PER_TUNNEL and len(tunnels) > 1:
                raise ConfigError(f"--{key.name} on the command line would apply to all "
                                  f"{len(tunnels)} tunnels of the file; set it per tunnel there")
            overrides[key.dest] = value
    result = []
    for tunnel in tunnels:
        args = copy.deepcopy(tunnel.args)
        for dest, value in overrides.items():
            setattr(args, dest, value)
        result.append(TunnelConfig(tunnel.label, args))
    return result
