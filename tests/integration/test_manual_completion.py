"""The generated manual pages render in groff without warnings, and the completion scripts work
in real bash and zsh (tests/unit/test_manual_completion.py checks their text)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from linkbridge.cli.completion import completion_script
from linkbridge.cli.manual import manual_pages
from linkbridge.cli.parser import build_parser
from tests.unit.test_manual_completion import PLUGINS


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
def test_pages_render_without_warnings() -> None:
    for name, text in manual_pages(build_parser()).items():
        done = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z"], input=text,
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0 and not done.stderr, f"{name}: {done.stderr}"


def complete(line: str, plugins: list[dict[str, Any]] = PLUGINS) -> list[str]:
    """What bash offers for the cursor at the end of `line` (the script loaded in a real bash)."""
    script = completion_script("bash", build_parser(), plugins)
    program = (f"{script}\nCOMP_LINE={_quote(line)}; COMP_POINT=${{#COMP_LINE}}\n"
               "_linkbridge; printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    done = subprocess.run(["bash", "--norc", "-c", program], capture_output=True, text=True,
                          check=True)
    assert done.stderr == ""
    return [word for word in done.stdout.splitlines() if word]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def test_bash_completes_commands_options_and_choices() -> None:
    assert complete("linkbridge st") == ["status"]
    assert "--prometheus" in complete("linkbridge status --")
    offered = complete("linkbridge up --li")
    assert "--link" in offered and all(flag.startswith("--li") for flag in offered)
    assert complete("linkbridge --log-format ") == ["text", "json"]
    assert complete("linkbridge -v up --fragment al") == ["always"]
    assert complete("linkbridge completion ") == ["bash", "zsh"]
    assert complete("linkbridge up --mtu ") == []  # a number: nothing to offer


def test_bash_completes_link_urls_from_the_plugins() -> None:
    assert complete("linkbridge up --link ") == ["udp:", "serial:"]
    assert complete("linkbridge link s") == ["serial:"]
    assert complete("linkbridge lab --via ") == ["sim:"]  # only wrappers after --via
    # bash has split the word at ':', '=' and '&': it is offered what follows the last of them
    assert complete("linkbridge up --link udp:") == ["?mtu=", "?gso="]
    assert complete("linkbridge up --link serial:/dev/ttyS0?b") == ["/dev/ttyS0?baud="]
    assert complete("linkbridge up --link serial:/dev/ttyS0?baud=9600&") == ["baud=", "crc="]
    assert complete("linkbridge up --link serial:/dev/ttyS0?baud=9600&c") == ["crc="]
    assert complete("linkbridge up --link tcp:") == []  # not installed
    assert complete("linkbridge up --link ", plugins=[]) == []


def test_bash_completes_files_for_file_options(tmp_path: Path) -> None:
    (tmp_path / "capture.pcap").touch()
    assert complete(f"linkbridge up --pcap {tmp_path}/cap") == [f"{tmp_path}/capture.pcap"]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_script_loads() -> None:
    script = completion_script("zsh", build_parser(), PLUGINS)
    done = subprocess.run(
        ["zsh", "-f", "-c", "autoload -U compinit && compinit -u -D && source /dev/stdin && "
                            "print -r -- ${_comps[linkbridge]} && "
                            "_linkbridge_urls links 'udp:x?m'"],
        input=script, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.split() == ["_linkbridge", "udp:x?mtu=", "udp:x?gso="]


def test_bash_completes_a_command_of_a_command() -> None:
    assert complete("linkbridge plugin ") == ["new"]
    assert "--directory" in complete("linkbridge plugin new --")
