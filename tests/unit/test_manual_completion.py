"""The manual pages and the shell completion scripts are generated from the real parser: every
option of every command must appear in both (tests/integration/test_manual_completion.py renders
the pages in groff and runs the scripts in their shells)."""

from __future__ import annotations

import argparse
import re
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
    assert "--directory" in completion_script("zsh", build_parser(), PLUGINS)


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
