"""`lab`: two hosts in network namespaces joined by a linkbridge tunnel, measured and removed."""

from __future__ import annotations

import argparse

from linkbridge.cli.installed import InstalledPlugins
from linkbridge.ops.signals import shutdown_on_signals


def cmd_lab(args: argparse.Namespace, plugins: InstalledPlugins) -> None:
    """`lab`: build the lab over the chosen link, report, tear it down."""
    from linkbridge.lab.run import LabOptions, run_lab  # the lab's modules load only for `lab`

    with shutdown_on_signals():
        run_lab(LabOptions(link=args.link, via=tuple(args.via), mtu=args.mtu, count=args.count,
                           interval=args.interval, transfer_bytes=args.transfer_bytes,
                           ipv6=args.ipv6, plot=args.plot, plot_data=args.plot_data,
                           compress=args.compress, verbose=args.verbose),
                plugins.registry)
