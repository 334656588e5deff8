"""`lab`: two hosts in network namespaces joined by a linkbridge tunnel, measured and removed."""

from __future__ import annotations

import argparse

from linkbridge.cli.installed import InstalledPlugins
from linkbridge.ops.signals import shutdown_on_signals


def cmd_lab(args: argparse.Namespace, plugins: InstalledPlugins) -> None:
    """`lab`: build the lab over the chosen link, report, tear it down."""
    from linkbridge.lab.options import LabOptions  # the lab's modules load only for `lab`
    from linkbridge.lab.run import run_lab

    with shutdown_on_signals():
        run_lab(LabOptions(link=args.link, via=tuple(args.via), mtu=args.mtu, count=args.count,
                           interval=args.interval, transfer_bytes=args.transfer_bytes,
                           transfer_time=args.transfer_time, ipv6=args.ipv6, plot=args.plot,
                           plot_data=args.plot_data, compress=args.compress,
                           encrypt=args.encrypt, cipher=args.cipher, offload=args.offload,
                           offload_flags=args.offload_flags, fragment=args.fragment,
                           fragment_timeout=args.fragment_timeout, repair=args.repair,
                           verbose=args.verbose),
                plugins.registry)
