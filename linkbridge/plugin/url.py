"""Link URLs: `scheme:target?key=value&key=value`, parsed without knowing any link type."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from linkbridge.errors import ConfigError

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*\Z")


@dataclass(frozen=True)
class LinkUrl:
    """A parsed link URL; options stay raw strings until the link class validates them."""

    scheme: str
    target: str = ""
    options: dict[str, str] = field(default_factory=dict)
    written: str = field(default="", compare=False)  # the text it was parsed from, if any

    @property
    def shown(self) -> str:
        """The URL as the user wrote it (for messages), else its canonical form."""
        return self.written or str(self)

    def __str__(self) -> str:
        query = "&".join(f"{key}={value}" for key, value in self.options.items())
        return f"{self.scheme}:{self.target}" + (f"?{query}" if query else "")

    def with_target(self, target: str) -> LinkUrl:
        return LinkUrl(self.scheme, target, dict(self.options))


def parse_link_url(text: str) -> LinkUrl:
    """Split a link URL into scheme, target and options; raise ConfigError when malformed.

    `udp:198.18.0.2:5555?bind=0.0.0.0:5555` -> ("udp", "198.18.0.2:5555", {"bind": "0.0.0.0:5555"}).
    A bare scheme (`udp`) is allowed; values are taken literally (`loss=5%` keeps its `%`).
    """
    text = text.strip()
    if not text:
        raise ConfigError("empty link URL: expected scheme:target?key=value")
    head, _, query = text.partition("?")
    scheme, _, target = head.partition(":")
    scheme = scheme.lower()
    if not _SCHEME.match(scheme):
        raise ConfigError(
            f"bad link URL {text!r}: scheme {scheme!r} must be letters, digits, '+', '-' or '.'"
        )
    options: dict[str, str] = {}
    for item in query.split("&") if query else ():
        if not item:
            continue
        key, eq, value = item.partition("=")
        key = key.strip()
        if not key or not eq:
            raise ConfigError(f"bad option {item!r} in link URL {text!r}: expected key=value")
        if key in options:
            raise ConfigError(f"option {key!r} given twice in link URL {text!r}")
        options[key] = value
    return LinkUrl(scheme, target, options, written=text)
