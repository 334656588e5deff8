"""Manual pages in roff, generated from the real parser: `linkbridge(1)` with the global options
and the list of commands, and `linkbridge-COMMAND(1)` for each command.

The wheel build (setup.py) writes them to share/man/man1; `linkbridge manual` prints them.
"""

from __future__ import annotations

import argparse
import datetime
import os

from linkbridge import __version__
from linkbridge.cli.grammar import Argument, Command, read_command

SECTION = "1"
FILES = """\
.TP
.I /run/linkbridge/run/UID/PID\\-DEVICE.sock
status socket of each running tunnel (read by \\fBlinkbridge status\\fR)
"""
ENVIRONMENT = """\
.TP
.B LINKBRIDGE_RUN_DIR
where tunnels publish their status sockets (default /run/linkbridge/run)
"""


def roff_text(text: str) -> str:
    """Plain text made safe for roff: backslashes, leading dots and quotes, hyphens."""
    lines = []
    for line in text.replace("\\", "\\e").replace("-", "\\-").splitlines():
        lines.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(lines)


def _argument(argument: Argument) -> str:
    names = ", ".join(f"\\fB{roff_text(flag)}\\fR" for flag in argument.flags) or \
        f"\\fI{roff_text(argument.metavar)}\\fR"
    value = f" \\fI{roff_text(argument.metavar)}\\fR" if argument.flags and argument.metavar \
        else ""
    repeat = (" (repeatable)" if argument.flags and argument.repeatable
              and "repeatable" not in argument.help else "")
    return f".TP\n{names}{value}\n{roff_text(argument.help + repeat) or '.'}\n"


def _roff_name(words: list[str]) -> str:
    """The page name of the command `words` in roff: linkbridge\\-plugin\\-new."""
    return "\\-".join(words)


def _header(name: str, summary: str) -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")  # reproducible builds set it
    summary = summary[:1].lower() + summary[1:].rstrip(".")  # NAME lines: "name - what it does"
    date = (datetime.datetime.fromtimestamp(int(epoch), datetime.UTC).date() if epoch
            and epoch.isdigit() else datetime.date.today()).isoformat()
    return (f'.TH "{name.upper()}" "{SECTION}" "{date}" "linkbridge {__version__}" '
            f'"linkbridge manual"\n.nh\n.SH NAME\n{roff_text(name)} \\- {roff_text(summary)}\n')


def _body(command: Command, words: list[str]) -> str:
    """The page of the command `words` (["linkbridge", "plugin"]) from SYNOPSIS on."""
    parts = [f".SH SYNOPSIS\n.ad l\n{roff_text(command.usage)}\n.ad\n"]
    if command.description:
        parts.append(f".SH DESCRIPTION\n{roff_text(command.description)}\n")
    if command.positionals:
        parts.append(".SH ARGUMENTS\n" + "".join(_argument(a) for a in command.positionals))
    if command.options:
        parts.append(".SH OPTIONS\n" + "".join(_argument(a) for a in command.options))
    if command.subcommands:
        parts.append(".SH COMMANDS\n" + "".join(
            f".TP\n\\fB{' '.join(words)} {sub.name}\\fR\n{roff_text(sub.summary)}; see "
            f"\\fB{_roff_name([*words, sub.name])}\\fR({SECTION})\n"
            for sub in command.subcommands))
    if command.epilog:
        examples = command.epilog.removeprefix("examples:\n")
        parts.append(f".SH EXAMPLES\n.nf\n{roff_text(examples.rstrip())}\n.fi\n")
    return "".join(parts)


def manual_pages(parser: argparse.ArgumentParser) -> dict[str, str]:
    """File name -> roff text of every page: linkbridge.1 and linkbridge-COMMAND.1."""
    program = parser.prog
    top = read_command(parser)
    see_also = ", ".join(f"\\fB{program}\\-{sub.name}\\fR({SECTION})" for sub in top.subcommands)
    pages = {f"{program}.{SECTION}": _header(program, top.description) + _body(top, [program])
             + f".SH FILES\n{FILES}.SH ENVIRONMENT\n{ENVIRONMENT}.SH SEE ALSO\n{see_also}\n"}
    for sub in top.subcommands:
        pages.update(_command_pages(sub, [program]))
    return pages


def _command_pages(command: Command, above: list[str]) -> dict[str, str]:
    """The page of `command` under the command `above`, and of its own commands (`plugin
    new` is linkbridge-plugin-new.1)."""
    words = [*above, command.name]
    name = "-".join(words)
    pages = {f"{name}.{SECTION}": _header(name, command.summary) + _body(command, words)
             + f".SH SEE ALSO\n\\fB{_roff_name(above)}\\fR({SECTION})\n"}
    for sub in command.subcommands:
        pages.update(_command_pages(sub, words))
    return pages
