"""The one error hierarchy: every error a user should see as a single line derives from it."""

from __future__ import annotations


class LinkbridgeError(Exception):
    """Base of all linkbridge errors; its message is one line meant for a user."""


class ConfigError(LinkbridgeError):
    """A bad command-line value, link URL or option."""


class PluginError(LinkbridgeError):
    """A plugin could not be found, loaded or registered."""


class TunnelError(LinkbridgeError):
    """The tunnel device, its addresses or routes could not be set up."""


class LinkError(LinkbridgeError):
    """A link could not be opened or failed for good."""
