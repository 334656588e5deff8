"""The installed plugins as `main` hands them to every command, each part built at most once."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pluggy

from linkbridge.plugin.registry import LinkRegistry


class InstalledPlugins:
    """The plugin manager and its link registry, each built when a command first needs it:
    `status` needs neither, and the ports-only forms of `up` and `tunnel` no link plugin."""

    def __init__(self, load: Callable[[], pluggy.PluginManager]) -> None:
        self._load = load

    @functools.cached_property
    def manager(self) -> pluggy.PluginManager:
        """The plugin manager: its hooks hear of tunnels going up and down."""
        return self._load()

    @functools.cached_property
    def registry(self) -> LinkRegistry:
        """Link and wrapper classes by scheme; PluginError when no link plugin is installed."""
        return LinkRegistry(self.manager)
