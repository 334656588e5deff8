"""Parsers for the simulator's option values, in netem's spelling: `5%`, `9600`, `1mbit`."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Parser = Callable[[str], Any]  # as linkbridge.plugin.Option takes it

_NUMBER = r"([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)"
_PERCENT = re.compile(rf"\s*{_NUMBER}\s*(%?)\s*\Z", re.IGNORECASE)
_DECIBELS = re.compile(rf"\s*(-?){_NUMBER}\s*(?:db)?\s*\Z", re.IGNORECASE)
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


def decibels(text: str) -> float:
    """A level or margin in dB: `6`, `6dB`, `-3.5dB`."""
    match = _DECIBELS.match(text)
    if not match:
        raise ValueError("expected decibels such as 6dB or -3dB")
    return float(match.group(1) + match.group(2))


def path(text: str) -> str:
    """A file path; must not be empty."""
    if not text.strip():
        raise ValueError("expected a file path")
    return text


def scaled(units: dict[str, float], what: str, example: str) -> Parser:
    """Parser for a positive number with one of `units` (a suffix -> multiplier), e.g. 125k."""
    pattern = re.compile(rf"\s*{_NUMBER}\s*({'|'.join(units)})\s*\Z", re.IGNORECASE)

    def parse(text: str) -> float:
        match = pattern.match(text)
        if not match:
            raise ValueError(f"expected a {what} such as {example}")
        value = float(match.group(1)) * units[match.group(2).lower()]
        if value <= 0:
            raise ValueError(f"a {what} must be > 0")
        return value

    return parse


# a duty-cycle window in seconds: `1h`, `10min`, `90s`, `500ms` (bare number: seconds)
window = scaled({"us": 1e-6, "ms": 1e-3, "min": 60.0, "s": 1.0, "h": 3600.0, "": 1.0},
                "window", "1h, 10min or 90s")
# a LoRa bandwidth in Hz: `125k`, `125khz`, `125000`, `0.5mhz`
bandwidth = scaled({"khz": 1e3, "k": 1e3, "mhz": 1e6, "m": 1e6, "hz": 1.0, "": 1.0},
                   "bandwidth", "125k or 500khz")


def positive_percent(text: str) -> float:
    """A percentage above 0 (a duty cycle of 0% would never send)."""
    value = percent(text)
    if value <= 0:
        raise ValueError("must be > 0%")
    return value


def coding_rate(text: str) -> int:
    """A LoRa coding rate `4/5`..`4/8` (or `5`..`8`) as Semtech's CR 1..4."""
    denominator = text.strip().removeprefix("4/")
    if denominator not in ("5", "6", "7", "8"):
        raise ValueError("expected a coding rate 4/5, 4/6, 4/7 or 4/8")
    return int(denominator) - 4
