"""The public hook specifications of linkbridge, grouped by when they are called.

Every hook here is public API for plugin authors; `tests/unit/test_hookspecs.py` checks that
each one is documented in docs/plugins.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from linkbridge.plugin.link import Link, LinkWrapper
    from linkbridge.plugin.tunnel_info import TunnelInfo

PROJECT = "linkbridge"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- Registration: called once when the plugin manager is built -------------------------


@hookspec
def linkbridge_register_links() -> list[type[Link]]:
    """Return the link classes this plugin contributes.

    Each class derives from `linkbridge.plugin.Link` and is keyed by its `scheme` class attribute;
    two plugins contributing the same scheme stop start-up with an error naming both. Its
    `drop_reasons` class attribute declares the drop reasons it counts beyond the core's, each
    with a one-line description (shown by `linkbridge links` and `status`).
    """
    raise NotImplementedError


@hookspec
def linkbridge_register_wrappers() -> list[type[LinkWrapper]]:
    """Return the link wrapper classes (used with `--via`) this plugin contributes.

    Each class derives from `linkbridge.plugin.LinkWrapper`, is keyed by its `scheme`, and wraps
    any other link, e.g. to inject loss and delay in front of a real hardware link.
    """
    raise NotImplementedError


# --- Tunnel life cycle: called by `linkbridge up` and `linkbridge tunnel` ---------------


@hookspec
def linkbridge_tunnel_up(tunnel: TunnelInfo) -> None:
    """Called once the tunnel device, its addresses and routes exist and packets flow."""


@hookspec
def linkbridge_tunnel_down(tunnel: TunnelInfo) -> None:
    """Called when the tunnel is about to be torn down (signal, error or normal exit)."""
