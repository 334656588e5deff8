"""`plugin new NAME`: a link plugin package to start from, made from the templates shipped in
linkbridge (cli/templates/plugin): it installs, `linkbridge links` lists it, and its tests run
the conformance suite, which it passes as made."""

from __future__ import annotations

import argparse
import re
import string
from importlib import resources
from pathlib import Path

from linkbridge import __version__
from linkbridge.cli.installed import InstalledPlugins
from linkbridge.errors import ConfigError

NAME = re.compile(r"[a-z][a-z0-9]*\Z")  # a URL scheme and a part of an identifier at once
# template -> the file it becomes, in the package directory
FILES = {
    "pyproject.toml.template": "pyproject.toml",
    "README.md.template": "README.md",
    "module.py.template": "linkbridge_$name/__init__.py",
    "test_conformance.py.template": "tests/test_conformance.py",
}
MARKER = "linkbridge_$name/py.typed"  # empty: the package's type hints are for its users


def plugin_files(name: str) -> dict[str, str]:
    """Path in the package directory -> contents, for a plugin called `name`."""
    fields = {"name": name, "Name": name.capitalize(), "linkbridge_version": __version__}
    templates = resources.files("linkbridge.cli") / "templates" / "plugin"
    files = {string.Template(path).substitute(fields):
             string.Template((templates / template).read_text()).substitute(fields)
             for template, path in FILES.items()}
    return {**files, string.Template(MARKER).substitute(fields): ""}


def check_name(name: str, schemes: set[str], directory: Path) -> None:
    """Raise ConfigError, one line, when `name` cannot make a new plugin in `directory`."""
    if not NAME.match(name):
        raise ConfigError(f"plugin name {name!r}: use lowercase letters and digits, starting "
                          "with a letter (it is the URL scheme and names linkbridge_NAME)")
    if name in schemes:
        raise ConfigError(f"plugin name {name!r}: an installed plugin already has the scheme "
                          f"{name}: (see `linkbridge links`)")
    if directory.exists():
        raise ConfigError(f"plugin name {name!r}: {directory} already exists")


def cmd_plugin_new(args: argparse.Namespace, plugins: InstalledPlugins) -> None:
    """`plugin new NAME`: write linkbridge-NAME/ into --directory."""
    directory = Path(args.directory) / f"linkbridge-{args.name}"
    registry = plugins.registry
    check_name(args.name, {*registry.links, *registry.wrappers}, directory)
    for path, text in plugin_files(args.name).items():
        target = directory / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    print(f"wrote {directory}/: `pip install -e {directory}`, then `linkbridge links` lists "
          f"{args.name}: and `pytest {directory}` runs the conformance suite")


def cmd_plugin(args: argparse.Namespace, plugins: InstalledPlugins) -> None:
    """`plugin ACTION`: the plugin author's tools."""
    {"new": cmd_plugin_new}[args.plugin_command](args, plugins)
