"""Parsers for the simulator's option values, in netem's spelling: `5%`, `9600`, `1mbit`."""

from __future__ import annotations

import re

from linkbridge.plugin import Parser

_NUMBER = r"([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)"
_PERCENT = re.compile(rf"\s*{_NUMBER}\s*(%?)\s*\Z", re.IGNORECASE)
_RATE = re.compile(rf"\s*{_NUMBER}\s*([a-z]*)\s*\Z", re.IGNORECASE)
_RATE_UNITS = {
    "": 1.0, "bit": 1.0, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9,
    "bps": 8.0, "kbps": 8e3, "mbps": 8e6, "gbps": 8e9,
}


def percent(text: str) -> float:
    """`5%` or `5` -> 0.05; must lie in 0..100%."""
    match = _PERCENT.match(text)
    if not match:
        raise ValueError("expected a percentage such as 5% or 0.1%")
    value = float(match.group(1)) / 100.0
    if value > 1.0:
        raise ValueError("a percentage must be <= 100%")
    return value


def percent_list(count: int) -> Parser:
    """Parser for 1..`count` comma-separated percentages, e.g. `gemodel=1%,10%,70%,0.1%`."""

    def parse(text: str) -> tuple[float, ...]:
        items = text.split(",")
        if not 1 <= len(items) <= count:
            raise ValueError(f"expected 1 to {count} comma-separated percentages")
        return tuple(percent(item) for item in items)

    return parse


def bitrate(text: str) -> float:
    """Bits per second from `9600`, `9600bit`, `64kbit`, `1mbit` or bytes in `100kbps`."""
    match = _RATE.match(text)
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _RATE_UNITS:
        raise ValueError("expected a rate such as 9600 (bit/s), 64kbit, 1mbit or 100kbps (bytes)")
    value = float(match.group(1)) * _RATE_UNITS[unit]
    if value <= 0:
        raise ValueError("a rate must be > 0")
    return value


def signed_integer(text: str) -> int:
    """A whole number that may be negative (per-packet overhead can shrink a packet)."""
    try:
        return int(text, 10)
    except ValueError:
        raise ValueError("expected a whole number of bytes, e.g. 14 or -4") from None


def path(text: str) -> str:
    """A file path; must not be empty."""
    if not text.strip():
        raise ValueError("expected a file path")
    return text
