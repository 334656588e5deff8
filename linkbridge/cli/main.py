"""The `linkbridge` entry point: parse the command line, run one command, errors as one line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from linkbridge.cli.installed import InstalledPlugins
from linkbridge.cli.kernel import cmd_down
from linkbridge.cli.keys import cmd_genkey, cmd_genpsk, cmd_pubkey
from linkbridge.cli.lab import cmd_lab
from linkbridge.cli.parser import build_parser
from linkbridge.cli.plugin import cmd_plugin
from linkbridge.cli.show import cmd_completion, cmd_links, cmd_manual, cmd_status
from linkbridge.cli.up import cmd_link, cmd_reload, cmd_tunnel, cmd_up
from linkbridge.errors import ConfigError, LinkbridgeError
from linkbridge.ops.logs import setup_logging
from linkbridge.ops.signals import Shutdown
from linkbridge.plugin.registry import get_plugin_manager

log = logging.getLogger("linkbridge")

Command = Callable[[argparse.Namespace, InstalledPlugins], None]
COMMANDS: dict[str, Command] = {"up": cmd_up, "tunnel": cmd_tunnel, "link": cmd_link,
                                "reload": cmd_reload,
                                "links": cmd_links, "plugin": cmd_plugin, "down": cmd_down,
                                "status": cmd_status,
                                "lab": cmd_lab, "completion": cmd_completion,
                                "manual": cmd_manual, "genkey": cmd_genkey,
                                "pubkey": cmd_pubkey, "genpsk": cmd_genpsk}


def main(argv: Sequence[str] | None = None) -> int:
    """Run `linkbridge ARGV`; the exit status: 0, 1 on an error, 2 on a configuration error."""
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    setup_logging(level, args.log_format, libraries=args.verbose >= 2)
    plugins = InstalledPlugins(get_plugin_manager)  # the one plugin manager, made when needed
    try:
        COMMANDS[args.command](args, plugins)
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
