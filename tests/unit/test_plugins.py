"""Plugin discovery through the entry-point group and the link registry."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from linkbridge.errors import ConfigError, PluginError
from linkbridge.plugin import registry as plugins
from linkbridge.plugin.hookspecs import hookimpl
from linkbridge.plugin.link import LinkWrapper
from linkbridge.plugin.options import Option
from linkbridge.plugin.registry import LinkRegistry, get_plugin_manager
from linkbridge.testing import MemoryLink, MemoryPlugin


class Tagger(LinkWrapper):
    scheme = "tag"
    options = (Option("prefix", bytes.fromhex, b"", "hex bytes to prepend"),)

    def open(self) -> None:
        self.inner.open()

    def send(self, packet: bytes) -> None:
        self.inner.send(self.config["prefix"] + packet)

    def receive(self, timeout: float) -> list[bytes]:
        return self.inner.receive(timeout)

    def close(self) -> None:
        self.inner.close()


class TaggerPlugin:
    @hookimpl
    def linkbridge_register_wrappers(self) -> list[type[LinkWrapper]]:
        return [Tagger]


def test_builtin_udp_found_through_entry_points() -> None:
    manager = get_plugin_manager()
    assert manager.get_plugin("udp") is not None
    registry = LinkRegistry(manager)
    assert registry.links["udp"].plugin == "udp"
    assert registry.link_class("udp").scheme == "udp"


def test_plugin_registered_from_a_test() -> None:
    manager = get_plugin_manager()
    manager.register(MemoryPlugin(), name="memory-test")
    manager.register(TaggerPlugin(), name="tagger-test")
    registry = LinkRegistry(manager)
    link = registry.create_link("memory:x?mtu=100", via=["tag:?prefix=ff"])
    assert isinstance(link, Tagger)
    assert isinstance(link.inner, MemoryLink)
    assert link.inner.config == {"mtu": 100}
    link.open()
    link.send(b"\x45")
    assert link.receive(0) == [b"\xff\x45"]
    kinds = {row["scheme"]: row["kind"] for row in registry.describe()}
    assert kinds["memory"] == "link"
    assert kinds["tag"] == "wrapper"
    assert kinds["udp"] == "link"


def test_duplicate_scheme_names_both_plugins() -> None:
    manager = get_plugin_manager()
    manager.register(MemoryPlugin(), name="first")
    manager.register(MemoryPlugin(), name="second")
    with pytest.raises(PluginError, match=r"'memory'.*'first'.*'second'"):
        LinkRegistry(manager)


def test_empty_group_says_so() -> None:
    with pytest.raises(PluginError, match=r"entry-point group 'linkbridge' is empty.*pip install"):
        LinkRegistry(get_plugin_manager(load_entry_points=False))


def test_unknown_scheme_lists_valid_ones_with_hint() -> None:
    registry = LinkRegistry(get_plugin_manager())
    hint = r"unknown link scheme 'upd' \(did you mean 'udp'\?\).*udp:"
    with pytest.raises(ConfigError, match=hint):
        registry.create_link("upd:1.2.3.4:5")


def test_unknown_wrapper_and_bad_option() -> None:
    registry = LinkRegistry(get_plugin_manager())
    with pytest.raises(ConfigError, match="unknown link wrapper scheme 'nope'"):
        registry.create_link("udp:198.18.0.2:1", via=["nope:"])
    # the URL as the user wrote it (once `link udp:: unknown option`)
    with pytest.raises(ConfigError, match=r"^link udp:198\.18\.0\.2:1\?mut=5: unknown option "
                                          r"'mut'.*did you mean 'mtu'"):
        registry.create_link("udp:198.18.0.2:1?mut=5")
    with pytest.raises(ConfigError, match=r"^wrapper SIM:\?los=1: unknown option 'los'"):
        registry.create_link("udp:198.18.0.2:1", via=["SIM:?los=1"])


def test_hook_returning_a_non_link_is_reported() -> None:
    class Broken:
        @hookimpl
        def linkbridge_register_links(self) -> list[object]:
            return [object]

    manager = get_plugin_manager()
    manager.register(Broken(), name="broken")
    with pytest.raises(PluginError, match=r"'broken'.*not a subclass of Link"):
        LinkRegistry(manager)


def test_two_entry_points_with_one_name_are_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    twins = [EntryPoint(name="udp", value="linkbridge_udp", group="linkbridge"),
             EntryPoint(name="udp", value="other_udp", group="linkbridge")]
    monkeypatch.setattr(plugins, "entry_points", lambda group: twins)
    with pytest.raises(PluginError, match=r"two plugins named 'udp'.*linkbridge_udp.*other_udp"):
        get_plugin_manager()


def test_plugin_that_fails_to_import_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = [EntryPoint(name="ghost", value="no_such_module_xyz", group="linkbridge")]
    monkeypatch.setattr(plugins, "entry_points", lambda group: broken)
    with pytest.raises(PluginError, match=r"plugin 'ghost'.*failed to load"):
        get_plugin_manager()
