"""One tunnel of `up` as plain values, as the command line or a config file asked for it."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields, replace
from typing import Any

from linkbridge.cli.parser import FRAGMENT_TIMEOUT
from linkbridge.errors import ConfigError
from linkbridge.plugin.options import port


@dataclass(frozen=True)
class UpOptions:
    """The options of one `up` (or `tunnel`) tunnel under their argparse names, not yet checked.

    `tunnel` has no link, config or fragmentation options: the defaults here are its values.
    """

    remote: tuple[str, ...]
    address: tuple[str, ...]
    mtu: int | None
    name: str | None
    user: str | None
    pcap: str | None
    pcap_limit: int
    rx: int | None
    tx: int | None
    host: str
    link: str | None = None
    via: tuple[str, ...] = ()
    fragment: str = "never"
    fragment_timeout: float = FRAGMENT_TIMEOUT
    config: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> UpOptions:
        """The options of a parsed `up` or `tunnel` command line (or of a config file's tunnel),
        the original tool's positional form mapped onto --rx/--tx/--remote/--mtu."""
        given = vars(args)
        values: dict[str, Any] = {}
        for field in fields(cls):
            if field.name in given:
                value = given[field.name]
                values[field.name] = tuple(value) if isinstance(value, list) else value
        return cls(**values).with_positional_form(given.get("legacy", []))

    def with_positional_form(self, legacy: list[str]) -> UpOptions:
        """Map `up RX_PORT TX_PORT REMOTE [MTU]` onto --rx/--tx/--remote/--mtu."""
        if not legacy:
            return self
        if len(legacy) not in (3, 4):
            raise ConfigError("positional form is: linkbridge up RX_PORT TX_PORT REMOTE_IP [MTU]")
        if self.link or self.rx or self.tx or self.remote:
            raise ConfigError("use either the positional form or --link/--rx/--tx/--remote, "
                              "not both")
        try:
            rx, tx = port(legacy[0]), port(legacy[1])
            mtu = int(legacy[3]) if len(legacy) == 4 else self.mtu
        except (ValueError, argparse.ArgumentTypeError) as exc:
            raise ConfigError(f"bad positional argument: {exc}") from None
        return replace(self, rx=rx, tx=tx, mtu=mtu, remote=(legacy[2],))
