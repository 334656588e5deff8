"""The plugin manager and the registry that resolves a link URL to a link class."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, TypeVar

import pluggy

from linkbridge.errors import ConfigError, PluginError
from linkbridge.plugin import hookspecs
from linkbridge.plugin.link import Link, LinkWrapper
from linkbridge.plugin.options import close_match_hint, resolve_options
from linkbridge.plugin.url import LinkUrl, parse_link_url
from linkbridge.wire import drops

ENTRY_POINT_GROUP = hookspecs.PROJECT

L = TypeVar("L", bound=Link)


def get_plugin_manager(load_entry_points: bool = True) -> pluggy.PluginManager:
    """Build a plugin manager with linkbridge's hooks and, by default, every installed plugin."""
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    if load_entry_points:
        load_plugins(manager)
    return manager


def load_plugins(manager: pluggy.PluginManager) -> None:
    """Register every module of the `linkbridge` entry-point group.

    pluggy would silently skip a second plugin of the same name; here that is an error naming both.
    """
    seen: dict[str, str] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        origin = f"{entry.value} from {_distribution_name(entry)}"
        if entry.name in seen:
            raise PluginError(
                f"two plugins named {entry.name!r} in entry-point group {ENTRY_POINT_GROUP!r}: "
                f"{seen[entry.name]} and {origin}"
            )
        seen[entry.name] = origin
        try:
            module = entry.load()
        except Exception as exc:  # a broken third-party plugin must not look like our bug
            raise PluginError(f"plugin {entry.name!r} ({origin}) failed to load: {exc}") from exc
        manager.register(module, name=entry.name)


def _distribution_name(entry: Any) -> str:
    dist = getattr(entry, "dist", None)
    return f"distribution {dist.name}" if dist is not None else "an unknown distribution"


@dataclass(frozen=True)
class Registered:
    """A link or wrapper class and the plugin that contributed it."""

    cls: type[Link]
    plugin: str


class LinkRegistry:
    """Link and wrapper classes by scheme, as contributed through the hooks."""

    def __init__(self, manager: pluggy.PluginManager) -> None:
        self.links = self._collect(manager, "linkbridge_register_links", Link)
        self.wrappers = self._collect(manager, "linkbridge_register_wrappers", LinkWrapper)
        if not self.links:
            raise PluginError(
                f"no link plugins found: the entry-point group {ENTRY_POINT_GROUP!r} is empty "
                "(install linkbridge with `pip install -e .` so its built-in links register)"
            )

    @staticmethod
    def _collect(
        manager: pluggy.PluginManager, hook_name: str, base: type
    ) -> dict[str, Registered]:
        found: dict[str, Registered] = {}
        hook = getattr(manager.hook, hook_name)
        for impl in hook.get_hookimpls():
            for cls in impl.function() or ():
                if not (isinstance(cls, type) and issubclass(cls, base) and issubclass(cls, Link)):
                    raise PluginError(
                        f"plugin {impl.plugin_name!r} returned {cls!r} from {hook_name}, "
                        f"not a subclass of {base.__name__}"
                    )
                scheme = getattr(cls, "scheme", "")
                if not scheme:
                    raise PluginError(f"plugin {impl.plugin_name!r}: {cls.__name__} has no scheme")
                if scheme in found:
                    raise PluginError(
                        f"scheme {scheme!r} is contributed by two plugins: "
                        f"{found[scheme].plugin!r} ({found[scheme].cls.__name__}) and "
                        f"{impl.plugin_name!r} ({cls.__name__})"
                    )
                found[scheme] = Registered(cls, impl.plugin_name)
        return found

    def link_class(self, scheme: str) -> type[Link]:
        return self._lookup(self.links, scheme, "link").cls

    def wrapper_class(self, scheme: str) -> type[LinkWrapper]:
        cls = self._lookup(self.wrappers, scheme, "link wrapper").cls
        assert issubclass(cls, LinkWrapper)
        return cls

    @staticmethod
    def _lookup(table: dict[str, Registered], scheme: str, kind: str) -> Registered:
        if scheme not in table:
            valid = ", ".join(f"{name}:" for name in sorted(table)) or "none installed"
            raise ConfigError(
                f"unknown {kind} scheme {scheme!r}{close_match_hint(scheme, table)}; "
                f"valid: {valid}"
            )
        return table[scheme]

    def link_options(self, url: LinkUrl) -> tuple[type[Link], dict[str, Any]]:
        """The link class a URL names and its validated options."""
        cls = self.link_class(url.scheme)
        return cls, resolve_options(f"link {url.shown}", cls.options, url.options)

    def wrapper_options(self, url: LinkUrl) -> tuple[type[LinkWrapper], dict[str, Any]]:
        """The wrapper class a `--via` URL names and its validated options."""
        cls = self.wrapper_class(url.scheme)
        return cls, resolve_options(f"wrapper {url.shown}", cls.options, url.options)

    def create_link(self, url: str | LinkUrl, via: Iterable[str | LinkUrl] = ()) -> Link:
        """Build the link a URL names, wrapped by each `via` URL (innermost first)."""
        parsed = _parsed(url)
        cls, options = self.link_options(parsed)
        link = cls(parsed.target, options)
        for wrapper_url in map(_parsed, via):
            wcls, woptions = self.wrapper_options(wrapper_url)
            link = wcls(wrapper_url.target, woptions, link)
        return link

    def describe(self) -> list[dict[str, Any]]:
        """Installed links and wrappers with their options, for `linkbridge links`."""
        rows = []
        for kind, table in (("link", self.links), ("wrapper", self.wrappers)):
            for scheme, entry in sorted(table.items()):
                rows.append({
                    "scheme": scheme,
                    "kind": kind,
                    "plugin": entry.plugin,
                    "summary": entry.cls.summary,
                    "target": entry.cls.target_help,
                    "options": [
                        {"name": o.name, "default": _plain(o.default), "help": o.help}
                        for o in entry.cls.options
                    ],
                    "drop_reasons": dict(entry.cls.drop_reasons),
                })
        return rows

    def drop_reasons(self) -> dict[str, str]:
        """Every drop reason with its description: the core's, then those the installed links
        and wrappers declare (`Link.drop_reasons`; the first declaration of a name wins)."""
        reasons = dict(drops.REASONS)
        for table in (self.links, self.wrappers):
            for entry in table.values():
                for reason, text in entry.cls.drop_reasons.items():
                    reasons.setdefault(reason, text)
        return reasons


def _plain(value: Any) -> Any:
    """An option default as JSON shows it: a value of a plugin's own type as its text."""
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)


def plugin_registry(*plugins: object) -> LinkRegistry:
    """The links of the installed plugins or, when `plugins` (modules or objects with hook
    implementations) are given, of those alone: a plugin under test needs no installing."""
    manager = get_plugin_manager(load_entry_points=not plugins)
    for plugin in plugins:
        manager.register(plugin)
    return LinkRegistry(manager)


def link_from_url(url: str | LinkUrl, *plugins: object) -> Link:
    """The link a URL names, built (not opened) as `linkbridge up` builds it, its options
    validated; from the installed plugins, or from `plugins` alone (see plugin_registry)."""
    return plugin_registry(*plugins).create_link(url)


def _parsed(url: str | LinkUrl) -> LinkUrl:
    return url if isinstance(url, LinkUrl) else parse_link_url(url)
