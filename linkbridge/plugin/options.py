"""Typed link options: a link class declares them, the registry validates a URL against them."""

from __future__ import annotations

import argparse
import difflib
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from linkbridge.errors import ConfigError

Parser = Callable[[str], Any]


@dataclass(frozen=True)
class Option:
    """One `key=value` a link accepts: how to parse the value, its default and its help."""

    name: str
    parse: Parser
    default: Any
    help: str

    def describe(self) -> str:
        default = "" if self.default is None else f" (default {self.default})"
        return f"{self.name}: {self.help}{default}"


def close_match_hint(word: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean X?)' when a choice resembles `word`, else ''."""
    match = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def resolve_options(
    owner: str, declared: Iterable[Option], given: Mapping[str, str]
) -> dict[str, Any]:
    """Parse `given` raw values against `declared` options, filling defaults.

    Errors name the owner (a link scheme), the bad key and the valid choices.
    """
    by_name = {option.name: option for option in declared}
    values = {name: option.default for name, option in by_name.items()}
    for key, raw in given.items():
        option = by_name.get(key)
        if option is None:
            valid = ", ".join(sorted(by_name)) or "none"
            raise ConfigError(
                f"{owner}: unknown option {key!r}{close_match_hint(key, by_name)}; "
                f"valid options: {valid}"
            )
        try:
            values[key] = option.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{owner}: bad value {raw!r} for option {key!r}: {exc}") from None
    return values


def integer(minimum: int | None = None, maximum: int | None = None) -> Parser:
    """Parser for a whole number within optional bounds."""

    def parse(text: str) -> int:
        try:
            value = int(text, 0)
        except ValueError:
            raise ValueError("expected a whole number") from None
        if minimum is not None and value < minimum:
            raise ValueError(f"must be >= {minimum}")
        if maximum is not None and value > maximum:
            raise ValueError(f"must be <= {maximum}")
        return value

    return parse


def boolean(text: str) -> bool:
    """Parser for 1/0, true/false, yes/no, on/off."""
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected 1/0, true/false, yes/no or on/off")


def choice(*choices: str) -> Parser:
    """Parser for one of a fixed set of words."""

    def parse(text: str) -> str:
        if text not in choices:
            hint = close_match_hint(text, choices)
            raise ValueError(f"expected one of {', '.join(choices)}{hint}")
        return text

    return parse


_DURATION = re.compile(r"\s*([0-9]*\.?[0-9]+)\s*(us|ms|s|)\s*\Z")
_DURATION_SCALE = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "": 1e-3}


def duration(text: str) -> float:
    """Parser for a duration in seconds from `40ms`, `1.5s`, `250us` or a bare number of ms."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError("expected a duration such as 40ms, 1.5s or 250us")
    return float(match.group(1)) * _DURATION_SCALE[match.group(2)]


def port(text: str) -> int:
    """A command line's UDP port, 1..65535 (an argparse type)."""
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} out of range 1..65535")
    return value


def host_port(text: str) -> tuple[str, int]:
    """Parser for `host:port`, `[v6addr]:port`; the host must be an IP address."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError("expected HOST:PORT (IPv6 as [ADDR]:PORT)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{host!r} is not an IP address") from None
    port = integer(0, 65535)(port_text)
    return str(address), port
