"""One tunnel of `up` as plain values, as the command line or a config file asked for it."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields, replace
from typing import Any

from linkbridge.cli.parser import FRAGMENT_TIMEOUT, HANDSHAKE_RETRY, REKEY_INTERVAL, REKEY_PACKETS
from linkbridge.datapath.encrypting import AUTO
from linkbridge.errors import ConfigError
from linkbridge.ops.hooks import DEFAULT_TIMEOUT, Hooks
from linkbridge.plugin.options import port
from linkbridge.wire.multilink import DEFAULT_HOLD_TIME, RESEQUENCE_WAIT


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
    link: tuple[str, ...] = ()  # several: one peer over each, in order of preference
    link_policy: str = "failover"
    hold_time: float = DEFAULT_HOLD_TIME
    reorder_wait: float = RESEQUENCE_WAIT
    clamp_mss: bool = False
    via: tuple[str, ...] = ()
    fragment: str = "never"
    fragment_timeout: float = FRAGMENT_TIMEOUT
    repair: str = "off"
    compress: str = "off"
    queue: str = "auto"
    queue_rate: float | None = None
    queue_limit: int | None = None
    offload: str = "off"
    offload_flags: str = ""
    config: str | None = None
    on_up: str | None = None
    on_down: str | None = None
    on_link_up: str | None = None
    on_link_down: str | None = None
    on_peer_up: str | None = None
    on_peer_down: str | None = None
    hook_timeout: float = DEFAULT_TIMEOUT
    keepalive: float | None = None
    link_timeout: float | None = None
    private_key: str | None = None
    peer_public_key: str | None = None
    preshared_key: str | None = None
    rekey_interval: float = REKEY_INTERVAL
    handshake_retry: float = HANDSHAKE_RETRY
    rekey_packets: int = REKEY_PACKETS
    cipher: str = AUTO
    state_dir: str | None = None
    peer: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        distinct_ports(self.rx, self.tx)

    @property
    def hooks(self) -> Hooks:
        """The tunnel's hook commands by event."""
        return Hooks({"up": self.on_up or "", "down": self.on_down or "",
                      "link-up": self.on_link_up or "", "link-down": self.on_link_down or "",
                      "peer-up": self.on_peer_up or "", "peer-down": self.on_peer_down or ""},
                     self.hook_timeout)

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


def distinct_ports(rx: int | None, tx: int | None) -> None:
    """Refuse RX equal to TX: the tunnel would receive its own packets back (a loop)."""
    if rx is not None and rx == tx:
        raise ConfigError(f"RX and TX ports are both {rx}: every packet would loop back into "
                          "the tunnel; give two different ports")
