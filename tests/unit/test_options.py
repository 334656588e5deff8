"""Typed link options: parsing values and the errors a user sees."""

from __future__ import annotations

import pytest

from linkbridge.errors import ConfigError
from linkbridge.plugin.options import (
    Option,
    boolean,
    choice,
    duration,
    host_port,
    integer,
    resolve_options,
)

DECLARED = (
    Option("baud", integer(50, 4_000_000), 115200, "line rate"),
    Option("crc", boolean, False, "CRC-16 trailer"),
    Option("parity", choice("N", "E", "O"), "N", "parity"),
)


def test_defaults_and_values() -> None:
    assert resolve_options("link serial:", DECLARED, {}) == {"baud": 115200, "crc": False,
                                                             "parity": "N"}
    assert resolve_options("link serial:", DECLARED, {"baud": "9600", "crc": "yes"}) == {
        "baud": 9600, "crc": True, "parity": "N"}


def test_unknown_option_names_scheme_key_choices_and_hint() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_options("link serial:", DECLARED, {"bauds": "9600"})
    message = str(info.value)
    assert "link serial:" in message
    assert "'bauds'" in message
    assert "did you mean 'baud'?" in message
    assert "valid options: baud, crc, parity" in message


@pytest.mark.parametrize(
    ("given", "fragment"),
    [({"baud": "fast"}, "whole number"), ({"baud": "10"}, ">= 50"), ({"crc": "maybe"}, "1/0"),
     ({"parity": "X"}, "one of N, E, O")],
)
def test_bad_values(given: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        resolve_options("link serial:", DECLARED, given)


@pytest.mark.parametrize(("text", "seconds"),
                         [("40ms", 0.04), ("1.5s", 1.5), ("250us", 0.00025), ("7", 0.007)])
def test_duration(text: str, seconds: float) -> None:
    assert duration(text) == pytest.approx(seconds)


def test_duration_rejects() -> None:
    with pytest.raises(ValueError):
        duration("soon")


@pytest.mark.parametrize(("text", "expected"),
                         [("198.18.0.2:5555", ("198.18.0.2", 5555)),
                          ("[fd00::1]:9", ("fd00::1", 9)), ("0.0.0.0:0", ("0.0.0.0", 0))])
def test_host_port(text: str, expected: tuple[str, int]) -> None:
    assert host_port(text) == expected


@pytest.mark.parametrize("text", ["host:1", "1.2.3.4", "1.2.3.4:70000", ":5"])
def test_host_port_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        host_port(text)
