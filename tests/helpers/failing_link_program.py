"""Run `linkbridge up` with an extra test plugin whose link fails for good after a moment.

usage: failing_link_program.py LINKBRIDGE-ARGS...   (use --link fail:)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any

import pluggy

from linkbridge.cli import main as cli
from linkbridge.errors import LinkError
from linkbridge.plugin import registry as plugins
from linkbridge.plugin.hookspecs import hookimpl
from linkbridge.plugin.link import Link
from linkbridge.testing import MemoryLink


class FailingLink(MemoryLink):
    """A memory link that carries nothing (it has no peer); its receive() fails for good 0.5 s
    after open()."""

    scheme = "fail"
    summary = "carries nothing, fails for good 0.5 s after open"

    def __init__(self, target: str, options: Mapping[str, Any]) -> None:
        super().__init__(target, options)
        self.peer = None
        self.deadline = 0.0

    def open(self) -> None:
        super().open()
        self.deadline = time.monotonic() + 0.5

    def receive(self, timeout: float) -> list[bytes]:
        packets = super().receive(min(timeout, 0.05))
        if time.monotonic() > self.deadline:
            raise LinkError("fail: the link hardware went away for good")
        return packets


class FailingPlugin:
    @hookimpl
    def linkbridge_register_links(self) -> list[type[Link]]:
        return [FailingLink]


def load_with_failing(manager: pluggy.PluginManager, original: Any = plugins.load_plugins) -> None:
    original(manager)
    manager.register(FailingPlugin(), name="failing-test")


if __name__ == "__main__":
    plugins.load_plugins = load_with_failing
    sys.exit(cli.main(sys.argv[1:]))
