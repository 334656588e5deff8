"""The command line as data, read from the real argparse parser: what the manual and the shell
completion are generated from, so that every option added to `parser.py` appears in both."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

# what a value is, for completion: a link URL, a wrapper URL, a file, one of `choices`, anything
URL, WRAPPER, FILE, CHOICE, TEXT = "url", "wrapper", "file", "choice", "text"


@dataclass(frozen=True)
class Argument:
    """One option (`flags` set) or positional argument (`flags` empty)."""

    flags: tuple[str, ...]
    metavar: str  # "" for a flag that takes no value
    help: str
    kind: str = TEXT
    choices: tuple[str, ...] = ()
    repeatable: bool = False  # may be given several times, or takes several values


@dataclass(frozen=True)
class Command:
    name: str  # "" for the top-level parser
    summary: str
    description: str
    usage: str
    epilog: str
    options: tuple[Argument, ...]
    positionals: tuple[Argument, ...]
    subcommands: tuple[Command, ...] = field(default=())

    @property
    def flags(self) -> list[str]:
        return [flag for option in self.options for flag in option.flags]


def _kind(action: argparse.Action, metavar: str) -> str:
    if action.choices is not None:
        return CHOICE
    if action.dest == "via":
        return WRAPPER
    if metavar == "URL":
        return URL
    if metavar in ("FILE", "DIR"):
        return FILE
    return TEXT


def _argument(action: argparse.Action) -> Argument:
    takes_value = action.nargs != 0
    if isinstance(action.metavar, tuple):
        metavar = " ".join(action.metavar)
    else:
        metavar = action.metavar or (
            "{" + ",".join(map(str, action.choices)) + "}" if action.choices is not None
            else action.dest.upper())
    if not takes_value:
        metavar = ""
    help_text = (action.help or "").replace("%%", "%")
    if action.default not in (None, argparse.SUPPRESS, False, [], "") and "%(default)" in help_text:
        help_text = help_text.replace("%(default)s", str(action.default))
    return Argument(tuple(action.option_strings), metavar, help_text,
                    _kind(action, metavar) if takes_value else TEXT,
                    tuple(map(str, action.choices or ())),
                    isinstance(action, argparse._AppendAction | argparse._CountAction)
                    or action.nargs in ("*", "+"))


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction[
        argparse.ArgumentParser] | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def read_command(parser: argparse.ArgumentParser, name: str = "", summary: str = "") -> Command:
    """`parser` (and its subcommands, recursively) as a Command."""
    options = [_argument(a) for a in parser._actions
               if a.option_strings and a.help != argparse.SUPPRESS]
    positionals = [_argument(a) for a in parser._actions
                   if not a.option_strings and not isinstance(a, argparse._SubParsersAction)]
    subcommands: list[Command] = []
    commands = _subparsers(parser)
    if commands is not None:
        helps = {choice.dest: choice.help or "" for choice in commands._choices_actions}
        subcommands = [read_command(sub, sub_name, helps.get(sub_name, ""))
                       for sub_name, sub in commands.choices.items()]
    usage = parser.format_usage().removeprefix("usage: ").strip()
    return Command(name, summary, parser.description or "", " ".join(usage.split()),
                   parser.epilog or "", tuple(options), tuple(positionals), tuple(subcommands))
