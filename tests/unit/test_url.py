"""Link URL parsing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkbridge.errors import ConfigError
from linkbridge.plugin.url import LinkUrl, parse_link_url


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("udp:198.18.0.2:5555", LinkUrl("udp", "198.18.0.2:5555")),
        ("udp:[fd00::2]:5555?bind=[::]:5555",
         LinkUrl("udp", "[fd00::2]:5555", {"bind": "[::]:5555"})),
        ("serial:/dev/ttyUSB0?baud=115200&crc=1",
         LinkUrl("serial", "/dev/ttyUSB0", {"baud": "115200", "crc": "1"})),
        ("sim:?mtu=100&loss=5%&delay=40ms",
         LinkUrl("sim", "", {"mtu": "100", "loss": "5%", "delay": "40ms"})),
        ("udp", LinkUrl("udp", "")),
        ("UDP:h:1", LinkUrl("udp", "h:1")),
        ("udp:1.2.3.4:5?&mtu=9&", LinkUrl("udp", "1.2.3.4:5", {"mtu": "9"})),
    ],
)
def test_parses(text: str, expected: LinkUrl) -> None:
    assert parse_link_url(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty link URL"),
        ("9udp:x", "scheme '9udp'"),
        ("u d p:x", "scheme"),
        ("udp:x?mtu", "expected key=value"),
        ("udp:x?=3", "expected key=value"),
        ("udp:x?mtu=1&mtu=2", "given twice"),
    ],
)
def test_rejects(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_link_url(text)


def test_str_round_trips() -> None:
    url = parse_link_url("serial:/dev/ttyS0?baud=9600&crc=1")
    assert parse_link_url(str(url)) == url


@given(st.text(max_size=60))
def test_any_text_parses_or_raises_config_error(text: str) -> None:
    try:
        url = parse_link_url(text)
    except ConfigError as exc:
        assert "\n" not in str(exc).strip() or "\n" in text
    else:
        assert url.scheme == url.scheme.lower()
