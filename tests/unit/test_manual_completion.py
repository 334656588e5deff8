"""The manual pages and the shell completion scripts are generated from the real parser: every
option of every command must appear in both, and the scripts must work in their shells."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from linkbridge.cli.completion import completion_script
from linkbridge.cli.grammar import read_command
from linkbridge.cli.manual import manual_pages
from linkbridge.cli.parser import build_parser

ROOT = Path(__file__).resolve().parents[2]
# what LinkRegistry.describe() gives, trimmed to what completion uses
PLUGINS: list[dict[str, Any]] = [
    {"scheme": "udp", "kind": "link", "options": [{"name": "mtu"}, {"name": "gso"}]},
    {"scheme": "serial", "kind": "link", "options": [{"name": "baud"}, {"name": "crc"}]},
    {"scheme": "sim", "kind": "wrapper", "options": [{"name": "loss"}, {"name": "delay"}]},
]


def commands() -> list[tuple[str, argparse.ArgumentParser]]:
    """("", the top parser) and (name, parser) of every command."""
    parser = build_parser()
    found = [("", parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found += list(action.choices.items())
    return found


def option_strings(parser: argparse.ArgumentParser) -> list[str]:
    return [flag for action in parser._actions for flag in action.option_strings]


def test_every_command_has_a_page_with_every_option() -> None:
    pages = {name: text.replace("\\-", "-") for name, text in manual_pages(build_parser()).items()}
    for command, parser in commands():
        page = pages[f"linkbridge-{command}.1" if command else "linkbridge.1"]
        missing = [flag for flag in option_strings(parser)
                   if not re.search(rf"\\fB{re.escape(flag)}\\fR", page)]
        assert not missing, f"{command or 'linkbridge'}: options missing from the manual: {missing}"
        for action in parser._actions:
            if not action.option_strings and action.help and action.dest != "command":
                assert (action.help.replace("%%", "%").split()[0]) in page


def test_overview_lists_every_command() -> None:
    page = manual_pages(build_parser())["linkbridge.1"]
    for command, _ in commands()[1:]:
        assert f"\\fBlinkbridge {command}\\fR" in page
        assert f"\\fBlinkbridge\\-{command}\\fR(1)" in page


def test_a_command_of_a_command_has_its_own_page_and_completion() -> None:
    pages = manual_pages(build_parser())
    assert "\\fBlinkbridge plugin new\\fR" in pages["linkbridge-plugin.1"]
    assert "\\fBlinkbridge\\-plugin\\-new\\fR(1)" in pages["linkbridge-plugin.1"]
    page = pages["linkbridge-plugin-new.1"]
    assert page.startswith('.TH "LINKBRIDGE-PLUGIN-NEW" "1"')
    assert "\\fB\\-\\-directory\\fR \\fIDIR\\fR" in page and "\\fINAME\\fR" in page
    assert "\\fBlinkbridge\\-plugin\\fR(1)" in page
    assert complete("linkbridge plugin ") == ["new"]
    assert "--directory" in complete("linkbridge plugin new --")
    assert "--directory" in completion_script("zsh", build_parser(), PLUGINS)


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
def test_pages_render_without_warnings() -> None:
    for name, text in manual_pages(build_parser()).items():
        done = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z"], input=text,
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0 and not done.stderr, f"{name}: {done.stderr}"


def test_roff_escapes_leading_dots_and_backslashes() -> None:
    from linkbridge.cli.manual import roff_text
    assert roff_text(".TH x\n'quote\\n") == "\\&.TH x\n\\&'quote\\en"


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_has_every_option_and_scheme(shell: str) -> None:
    script = completion_script(shell, build_parser(), PLUGINS)
    for command, parser in commands():
        missing = [flag for flag in option_strings(parser) if flag not in script]
        assert not missing, f"{shell} {command}: options missing from completion: {missing}"
        assert command in script
    for row in PLUGINS:
        assert f"{row['scheme']}:" in script
        for option in row["options"]:
            assert option["name"] in script


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


def test_grammar_reads_choices_and_urls() -> None:
    top = read_command(build_parser())
    up = next(sub for sub in top.subcommands if sub.name == "up")
    by_flag = {flag: option for option in up.options for flag in option.flags}
    assert by_flag["--link"].kind == "url"
    assert by_flag["--via"].kind == "wrapper" and by_flag["--via"].repeatable
    assert by_flag["--fragment"].choices == ("auto", "always", "never")
    assert by_flag["--pcap"].kind == "file"


def test_build_requires_the_runtime_dependencies() -> None:
    """setup.py imports the parser to write the manual pages at build time."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    build = set(project["build-system"]["requires"])
    missing = [dep for dep in project["project"]["dependencies"] if dep not in build]
    assert not missing, f"add to [build-system] requires: {missing}"


def test_manual_and_completion_commands(capsys: pytest.CaptureFixture[str]) -> None:
    from linkbridge.cli.main import main
    assert main(["manual", "status"]) == 0
    assert capsys.readouterr().out.startswith('.TH "LINKBRIDGE-STATUS" "1"')
    assert main(["manual", "nope"]) == 2
    assert "no manual page for 'nope'; commands: up, " in capsys.readouterr().err
    assert main(["completion", "bash"]) == 0
    assert "complete -F _linkbridge linkbridge" in capsys.readouterr().out
