"""The public plugin API: the one import a link plugin needs (`from linkbridge.plugin import ...`).

Everything in `__all__` is public and documented in docs/plugins.md; every other module of
linkbridge is private. The conformance suite (`LinkConformance` and its helpers) needs pytest and
is imported on first use. May import the layers below it: datapath, wire, framing, errors.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from linkbridge.datapath.counters import Counters
from linkbridge.datapath.datagram import Address, DatagramEndpoint, format_address
from linkbridge.datapath.endpoint import BatchSender, Endpoint, Pollable, RawPortProvider
from linkbridge.datapath.rawport import DevicePort, RawPort, SocketPort
from linkbridge.errors import ConfigError, LinkbridgeError, LinkError, PluginError, TunnelError
from linkbridge.framing import crc16, kiss, length_prefix, slip
from linkbridge.plugin.hookspecs import hookimpl
from linkbridge.plugin.lab import (
    SERIAL_BITS_PER_BYTE,
    LabDirection,
    LabFigures,
    LabMeasuring,
    LabPairing,
    LabSides,
)
from linkbridge.plugin.link import Link, LinkWrapper
from linkbridge.plugin.options import (
    Option,
    Parser,
    boolean,
    choice,
    duration,
    host_port,
    integer,
    port,
    resolve_options,
)
from linkbridge.plugin.registry import (
    LinkRegistry,
    get_plugin_manager,
    link_from_url,
    plugin_registry,
)
from linkbridge.plugin.streamlink import (
    LENGTH_FRAMING,
    SLIP_FRAMING,
    Framing,
    Stream,
    StreamLink,
)
from linkbridge.plugin.tunnel_info import TunnelInfo
from linkbridge.plugin.units import format_rate
from linkbridge.plugin.url import LinkUrl, parse_link_url
from linkbridge.wire import drops
from linkbridge.wire.fragment import MIN_FRAME_SIZE
from linkbridge.wire.packet import packet_problem

if TYPE_CHECKING:
    from linkbridge.plugin.conformance import (
        LinkConformance,
        free_port,
        payloads,
        receive_exactly,
    )

_CONFORMANCE = ("LinkConformance", "free_port", "payloads", "receive_exactly")

__all__ = [
    "LENGTH_FRAMING",
    "MIN_FRAME_SIZE",
    "SERIAL_BITS_PER_BYTE",
    "SLIP_FRAMING",
    "Address",
    "BatchSender",
    "ConfigError",
    "Counters",
    "DatagramEndpoint",
    "DevicePort",
    "Endpoint",
    "Framing",
    "LabDirection",
    "LabFigures",
    "LabMeasuring",
    "LabPairing",
    "LabSides",
    "Link",
    "LinkConformance",
    "LinkError",
    "LinkRegistry",
    "LinkUrl",
    "LinkWrapper",
    "LinkbridgeError",
    "Option",
    "Parser",
    "PluginError",
    "Pollable",
    "RawPort",
    "RawPortProvider",
    "SocketPort",
    "Stream",
    "StreamLink",
    "TunnelError",
    "TunnelInfo",
    "boolean",
    "choice",
    "crc16",
    "drops",
    "duration",
    "format_address",
    "format_rate",
    "free_port",
    "get_plugin_manager",
    "hookimpl",
    "host_port",
    "integer",
    "kiss",
    "length_prefix",
    "link_from_url",
    "packet_problem",
    "parse_link_url",
    "payloads",
    "plugin_registry",
    "port",
    "receive_exactly",
    "resolve_options",
    "slip",
]


def __getattr__(name: str) -> Any:
    """The conformance suite, imported (with pytest) only when a test asks for it."""
    if name in _CONFORMANCE:
        return getattr(importlib.import_module("linkbridge.plugin.conformance"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
