"""The conformance suite catches what a user would notice: deliberately broken variants of
docs/plugins.md's `fifo:` plugin (built from the page's own code) each fail it, with a message
naming the fault (a hang within seconds). The page's plugin itself passes
(tests/integration/test_docs_code.py), with what the suite measured in pytest's summary, and,
installed, runs `linkbridge lab --link fifo` as the page's walk-through says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.doc_blocks import DOCS, run_pytest, save_files
from tests.integration.test_example_plugin import install_fake_distribution

BROKEN = {
    "lossy": '''
    """Drops a packet when the pipe is full, instead of waiting for room."""

    def open_stream(self):
        stream = super().open_stream()
        self.out = stream.writer
        return stream

    def send(self, packet):
        try:
            os.write(self.out, length_prefix.encode(packet))
        except BlockingIOError:
            self.counters.drop(drops.QUEUE_FULL)
            return
        self.counters.sent(len(packet))
''',
    "same_lab_path": '''
    """Gives both lab hosts the same end of the pipes."""

    @classmethod
    @contextlib.contextmanager
    def lab_pair(cls, url, sides):
        with super().lab_pair(url, sides) as (a, _b):
            yield a, a
''',
    "raising_send": '''
    """Lets the full pipe's BlockingIOError out of send()."""

    def open_stream(self):
        stream = super().open_stream()
        self.out = stream.writer
        return stream

    def send(self, packet):
        os.write(self.out, length_prefix.encode(packet))
        self.counters.sent(len(packet))
''',
    "undeclared": '''
    """Counts a drop reason it declares nowhere."""

    def send(self, packet):
        if len(packet) == 1:
            self.counters.drop("fifo_tiny")
        super().send(packet)
''',
    "slow_timeout": '''
    """Waits five times its timeout when nothing arrives."""

    def receive(self, timeout):
        got = super().receive(timeout)
        if not got:
            time.sleep(4 * timeout)
        return got
''',
    "corrupting": '''
    """Flips a bit of every 100th packet it sends."""

    sends = 0

    def send(self, packet):
        self.sends += 1
        if self.sends % 100 == 0:
            packet = packet[:-1] + bytes([packet[-1] ^ 1])
        super().send(packet)
''',
    "blocking_send": '''
    """Sleeps a minute in send() when the pipe is full, instead of waiting for room with a
    deadline."""

    def open_stream(self):
        stream = super().open_stream()
        self.out = stream.writer
        return stream

    def send(self, packet):
        while True:
            try:
                os.write(self.out, length_prefix.encode(packet))
            except BlockingIOError:
                time.sleep(60)
            else:
                self.counters.sent(len(packet))
                return
''',
    "every_7th_lost": '''
    """Counts every 7th packet as sent and never writes it."""

    sends = 0

    def send(self, packet):
        self.sends += 1
        if self.sends % 7 == 0:
            self.counters.sent(len(packet))
            return
        super().send(packet)
''',
}

PLUGIN = '''
import contextlib
import os
import time

import linkbridge_fifo
from linkbridge.plugin import Link, drops, hookimpl
from linkbridge.plugin.codecs import length_prefix


class Broken(linkbridge_fifo.FifoLink):
{body}

@hookimpl
def linkbridge_register_links() -> list[type[Link]]:
    return [Broken]
'''

TEST = '''
import {name}
import test_fifo_conformance as page


class TestBroken(page.TestFifoConformance):
    plugins = ({name},)
'''

FAULTS = {
    "lossy": ("test_sustained_traffic_both_ways_loses_nothing",
              ["lost under plain load", "as queue_full", "wait in send() for room"]),
    "same_lab_path": ("test_lab_pair_joins_two_sides",
                      ["lab_pair() gave both sides the same URL fifo:"]),
    "raising_send": ("test_sustained_traffic_both_ways_loses_nothing",
                     ["send() raised BlockingIOError", "never an exception"]),
    "undeclared": ("test_packets_arrive_whole_both_ways",
                   ["counted drop reasons declared nowhere: fifo_tiny", "`drop_reasons`"]),
    "slow_timeout": ("test_receive_keeps_its_timeout",
                     ["receive(0.05) took", "wait at most `timeout`"]),
    "corrupting": ("test_sustained_traffic_both_ways_loses_nothing",
                   ["A -> B: 20 of 2000 packets arrived corrupted (packet 99: 1 of",
                    "find the damage"]),
    "blocking_send": ("test_sustained_traffic_both_ways_loses_nothing",
                      ["send() blocked for more than 5 s", "then count a drop"]),
    "every_7th_lost": ("test_sustained_traffic_both_ways_loses_nothing",
                       ["lost without a counted drop (A -> B: every 7th packet lost (285 of "
                        "2000: packets 6, 13, 20, ...)", "a regular pattern"]),
}
SECONDS = {"blocking_send": 15.0}  # the suite names a hang within this


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_broken_plugin_fails_the_suite_naming_its_fault(fault: str, tmp_path: Path) -> None:
    save_files(DOCS / "plugins.md", tmp_path)
    name = f"linkbridge_broken_{fault}"
    (tmp_path / f"{name}.py").write_text(PLUGIN.format(body=BROKEN[fault]))
    test = tmp_path / f"test_{fault}.py"
    test.write_text(TEST.format(name=name))
    failing_test, messages = FAULTS[fault]
    started = time.monotonic()
    code, output = run_pytest(test, "-k", failing_test)
    took = time.monotonic() - started
    assert took < SECONDS.get(fault, 120.0), f"{fault}: the suite took {took:.0f} s"
    assert code == pytest.ExitCode.TESTS_FAILED, output
    assert f"test_{fault}.py::TestBroken::{failing_test}" in output, output
    for message in messages:
        assert message in output, f"{fault}: no {message!r} in:\n{output[-3000:]}"


def test_the_same_suite_passes_the_page_plugin_on_those_checks(tmp_path: Path) -> None:
    """The checks the broken plugins fail are the ones the page's plugin passes."""
    page_test = next(path for path in save_files(DOCS / "plugins.md", tmp_path)
                     if path.name == "test_fifo_conformance.py")
    selected = " or ".join(sorted({test for test, _ in FAULTS.values()}))
    code, output = run_pytest(page_test, "-k", selected)
    assert code == pytest.ExitCode.OK, output
    assert "4 passed" in output, output
    measured = re.search(r"linkbridge conformance: measured -+\n(.*)\n", output)
    assert measured, output
    assert re.fullmatch(r"fifo: 4000 packets of \d+-1400 bytes: A -> B 2000/2000 delivered in "
                        r"[\d.]+ s \([\d.]+ [kMG]?bit/s\), B -> A 2000/2000 .*; drops: none; "
                        r"longest send\(\) [\d.]+ ms", measured[1]), measured[1]


def test_the_page_plugin_installed_runs_a_lab(root: None, tmp_path: Path) -> None:
    [plugin] = [path for path in save_files(DOCS / "plugins.md", tmp_path)
                if path.name == "linkbridge_fifo.py"]
    installed = tmp_path / "site"
    installed.mkdir()
    install_fake_distribution(installed, "fifo", plugin.read_text())
    done = subprocess.run([sys.executable, "-m", "linkbridge", "lab", "--link", "fifo"],
                          env=dict(os.environ, PYTHONPATH=str(installed)),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"ping +(\d+) sent, \1 received", done.stdout), done.stdout
    assert "content intact" in done.stdout, done.stdout
