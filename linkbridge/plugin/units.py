"""Figures for people: a rate with the unit scaled to its size (9600 bit/s, 64.0 kbit/s, ...)."""

from __future__ import annotations

RATE_UNITS = ((1e9, "Gbit/s"), (1e6, "Mbit/s"), (1e3, "kbit/s"))


def format_rate(bits_per_second: float) -> str:
    """`bits_per_second` in the largest unit (bit/s, kbit/s, Mbit/s, Gbit/s) that keeps the
    number at least 1, with three significant digits (whole bit/s below 1 kbit/s)."""
    for scale, unit in RATE_UNITS:
        if abs(bits_per_second) >= scale:
            value = bits_per_second / scale
            digits = 2 if abs(value) < 10 else 1 if abs(value) < 100 else 0
            return f"{value:.{digits}f} {unit}"
    return f"{bits_per_second:.0f} bit/s"
