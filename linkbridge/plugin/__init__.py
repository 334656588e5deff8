"""The public plugin API: the one import a link plugin needs (`from linkbridge.plugin import ...`).

Everything in `__all__` is public, documented in docs/plugins.md's API reference and kept
compatible as that page's policy says. Two public submodules serve fewer plugins: `lab` (what
`linkbridge lab` asks of a link) and `codecs` (sans-IO framing codecs). Every other module of
linkbridge, and of this package, is private: the core imports from those modules, not from here.
Importing this package needs neither pyserial nor pytest; the conformance suite
(`LinkConformance`, `free_port`) is imported, with pytest, on first use.
May import the layers below it: datapath, wire, framing, errors.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from linkbridge.datapath.counters import Counters
from linkbridge.datapath.datagram import DatagramEndpoint, format_address
from linkbridge.datapath.endpoint import (
    AddressedLink,
    BatchSender,
    Pollable,
    RawPortProvider,
    RoamingLink,
)
from linkbridge.datapath.rawport import RawPort
from linkbridge.errors import ConfigError, LinkbridgeError, LinkError
from linkbridge.framing.events import Lost
from linkbridge.plugin.hookspecs import hookimpl
from linkbridge.plugin.link import Link, LinkWrapper, ReportsLoss
from linkbridge.plugin.options import (
    Option,
    boolean,
    choice,
    duration,
    host_port,
    integer,
    resolve_options,
)
from linkbridge.plugin.streamlink import LENGTH_FRAMING, SLIP_FRAMING, Framing, Stream, StreamLink
from linkbridge.plugin.tunnel_info import TunnelInfo
from linkbridge.plugin.url import LinkUrl
from linkbridge.wire import drops
from linkbridge.wire.fragment import MIN_FRAME_SIZE

if TYPE_CHECKING:
    from linkbridge.plugin.conformance import LinkConformance, free_port

_CONFORMANCE = ("LinkConformance", "free_port")

__all__ = [
    "LENGTH_FRAMING",
    "MIN_FRAME_SIZE",
    "SLIP_FRAMING",
    "AddressedLink",
    "BatchSender",
    "ConfigError",
    "Counters",
    "DatagramEndpoint",
    "Framing",
    "Link",
    "LinkConformance",
    "LinkError",
    "LinkUrl",
    "LinkWrapper",
    "LinkbridgeError",
    "Lost",
    "Option",
    "Pollable",
    "RawPort",
    "RawPortProvider",
    "ReportsLoss",
    "RoamingLink",
    "Stream",
    "StreamLink",
    "TunnelInfo",
    "boolean",
    "choice",
    "drops",
    "duration",
    "format_address",
    "free_port",
    "hookimpl",
    "host_port",
    "integer",
    "resolve_options",
]


def __getattr__(name: str) -> Any:
    """The conformance suite, imported (with pytest) only when a test asks for it."""
    if name in _CONFORMANCE:
        return getattr(importlib.import_module("linkbridge.plugin.conformance"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
