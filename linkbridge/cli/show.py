"""`links`, `status`, `completion`, `manual`: what is installed, what is running, and the
command line itself, for people, shells, `man` and Prometheus."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from linkbridge.cli.completion import completion_script
from linkbridge.cli.installed import InstalledPlugins
from linkbridge.cli.manual import manual_pages
from linkbridge.cli.parser import WATCH_INTERVAL, build_parser
from linkbridge.errors import ConfigError, PluginError
from linkbridge.ops.metrics import exposition, serve_metrics
from linkbridge.ops.signals import shutdown_on_signals
from linkbridge.ops.status import collect_status
from linkbridge.ops.status_format import format_json, format_table
from linkbridge.ops.watch import watch

log = logging.getLogger("linkbridge")


def cmd_links(args: argparse.Namespace, plugins: InstalledPlugins) -> None:
    """`links`: the installed link and wrapper types, their options and drop reasons."""
    rows = plugins.registry.describe()
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        kind = "" if row["kind"] == "link" else " (wrapper, use with --via)"
        print(f"{row['scheme']}:{row['target']}{kind}  [{row['plugin']}]")
        print(f"    {row['summary']}")
        for option in row["options"]:
            default = "" if option["default"] is None else f" (default {option['default']})"
            print(f"    ?{option['name']}=  {option['help']}{default}")
        for reason, text in row["drop_reasons"].items():
            print(f"    drop {reason}: {text}")


def cmd_status(args: argparse.Namespace, plugins: InstalledPlugins) -> None:
    """`status`: every running tunnel this user may see, with its counters (needs no plugins);
    or live rates (--watch), or the counters for Prometheus (--prometheus, --metrics)."""
    if not args.watch and (args.interval is not None or args.count is not None):
        raise ConfigError("--interval and --count go with --watch")
    if args.watch:
        watch(collect_status, sys.stdout, args.interval or WATCH_INTERVAL, args.count)
    elif args.metrics:
        with shutdown_on_signals(), serve_metrics(args.metrics, collect_status) as (host, port):
            shown = f"[{host}]" if ":" in host else host
            log.info("serving metrics at http://%s:%d/metrics", shown, port)
            while True:
                time.sleep(3600)
    elif args.prometheus or args.openmetrics:
        sys.stdout.write(exposition(collect_status(), openmetrics=args.openmetrics))
    else:
        tunnels = collect_status()
        print(format_json(tunnels) if args.json else format_table(tunnels, time.time()))


def cmd_completion(args: argparse.Namespace, plugins: InstalledPlugins) -> None:
    """`completion SHELL`: the completion script, with the installed plugins' schemes."""
    try:
        rows = plugins.registry.describe()
    except PluginError as exc:
        log.warning("no link schemes to complete: %s", exc)
        rows = []
    sys.stdout.write(completion_script(args.shell, build_parser(), rows))


def cmd_manual(args: argparse.Namespace, plugins: InstalledPlugins) -> None:
    """`manual [COMMAND]`: a manual page in roff."""
    pages = manual_pages(build_parser())
    name = f"linkbridge-{args.page}.1" if args.page else "linkbridge.1"
    if name not in pages:
        commands = ", ".join(page[len("linkbridge-"):-2] for page in pages if "-" in page)
        raise ConfigError(f"no manual page for {args.page!r}; commands: {commands}")
    sys.stdout.write(pages[name])
