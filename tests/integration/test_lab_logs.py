"""`linkbridge -v lab` shows its two tunnels' logs, each line labelled with its side, a
plugin's debug lines included (docs/plugins.md: how a plugin logs); without -v they stay
quiet. The plugin is the page's `fifo:` one, logging through `logging.getLogger(__name__)`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.doc_blocks import DOCS, save_files
from tests.integration.test_example_plugin import install_fake_distribution

CHATTY = '''
import logging

import linkbridge_fifo
from linkbridge.plugin import Link, hookimpl

log = logging.getLogger(__name__)


class ChattyLink(linkbridge_fifo.FifoLink):
    scheme = "chatty"

    def open(self):
        log.debug("%s: opening the FIFOs", self.name)
        super().open()


@hookimpl
def linkbridge_register_links() -> list[type[Link]]:
    return [ChattyLink]
'''


@pytest.mark.parametrize("verbose", [True, False])
def test_the_lab_shows_the_tunnels_logs_with_v(root: None, verbose: bool,
                                               tmp_path: Path) -> None:
    [page] = [path for path in save_files(DOCS / "plugins.md", tmp_path)
              if path.name == "linkbridge_fifo.py"]
    installed = tmp_path / "site"
    installed.mkdir()
    shutil.copy(page, installed)  # importable, not registered: only chatty: is
    install_fake_distribution(installed, "chatty", CHATTY)
    done = subprocess.run([sys.executable, "-m", "linkbridge", *["-v"] * verbose, "lab",
                           "--link", "chatty", "--count", "2", "--bytes", "100000"],
                          env=dict(os.environ, PYTHONPATH=str(installed)),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    for side in "AB":
        shown = [line for line in done.stderr.splitlines()
                 if line.startswith(f"linkbridge: tunnel {side}: ")]
        if not verbose:
            assert not shown, done.stderr
            continue
        assert any(" up: mtu " in line for line in shown), done.stderr  # the tunnel's info
        assert any(line.endswith(": opening the FIFOs") for line in shown), done.stderr
