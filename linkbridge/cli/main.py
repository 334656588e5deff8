"""The `linkbridge` entry point: parse the command line, run one command, errors as one line."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import cast

from linkbridge.cli.installed import InstalledPlugins
from linkbridge.cli.parser import build_parser
from linkbridge.errors import ConfigError, LinkbridgeError
from linkbridge.ops.logs import setup_logging
from linkbridge.ops.signals import Shutdown
from linkbridge.plugin.registry import get_plugin_manager

log = logging.getLogger("linkbridge")

Command = Callable[[argparse.Namespace, InstalledPlugins], None]
# command -> (module of linkbridge.cli, function): only the module of the command that runs is
# imported, so a tunnel does not load the status client's HTTP server, the lab or the plugin kit
COMMANDS: dict[str, tuple[str, str]] = {
    "up": ("up", "cmd_up"), "tunnel": ("up", "cmd_tunnel"), "link": ("up", "cmd_link"),
    "reload": ("up", "cmd_reload"), "links": ("show", "cmd_links"),
    "plugin": ("plugin", "cmd_plugin"), "down": ("kernel", "cmd_down"),
    "status": ("show", "cmd_status"), "lab": ("lab", "cmd_lab"),
    "completion": ("show", "cmd_completion"), "manual": ("show", "cmd_manual"),
    "genkey": ("keys", "cmd_genkey"), "pubkey": ("keys", "cmd_pubkey"),
    "genpsk": ("keys", "cmd_genpsk"),
}


def command(name: str) -> Command:
    """The function that runs command `name`, its module imported now."""
    module, function = COMMANDS[name]
    return cast(Command, getattr(importlib.import_module(f"linkbridge.cli.{module}"), function))


def main(argv: Sequence[str] | None = None) -> int:
    """Run `linkbridge ARGV`; the exit status: 0, 1 on an error, 2 on a configuration error."""
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    setup_logging(level, args.log_format, libraries=args.verbose >= 2)
    plugins = InstalledPlugins(get_plugin_manager)  # the one plugin manager, made when needed
    try:
        command(args.command)(args, plugins)
    except Shutdown:
        return 0
    except LinkbridgeError as exc:
        if args.verbose:
            log.exception("error")
        print(f"linkbridge: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `linkbridge links | head`: the reader is gone, stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a shell reports a command killed by SIGPIPE
    return 0
