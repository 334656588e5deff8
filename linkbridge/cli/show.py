"""`links` and `status`: what is installed and what is running, for people or as JSON."""

from __future__ import annotations

import argparse
import json

from linkbridge.cli.installed import InstalledPlugins
from linkbridge.ops.status import collect, format_table


def cmd_links(args: argparse.Namespace, plugins: InstalledPlugins) -> None:
    """`links`: the installed link and wrapper types and their options."""
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


def cmd_status(args: argparse.Namespace, plugins: InstalledPlugins) -> None:
    """`status`: every running tunnel this user may see, with its counters (needs no plugins)."""
    documents = collect()
    print(json.dumps(documents, indent=2) if args.json else format_table(documents))
