"""`lab`: two hosts in network namespaces joined by a linkbridge tunnel, measured and removed."""

from __future__ import annotations

import argparse

from linkbridge.cli.installed import InstalledPlugins
from linkbridge.errors import ConfigError
from linkbridge.ops.signals import shutdown_on_signals


def cmd_lab(args: argparse.Namespace, plugins: InstalledPlugins) -> None:
    """`lab`: build the lab over the chosen link, report, tear it down."""
    from linkbridge.lab.options import LabOptions  # the lab's modules load only for `lab`
    from linkbridge.lab.run import run_lab

    if args.stations is not None or args.topology is not None:
        from linkbridge.lab.stations import run_stations

        if args.stations is None:
            raise ConfigError("--topology needs --stations N")
        with shutdown_on_signals():
            run_stations(args.link, args.stations, args.topology, args.pair_count, args.mtu,
                         plugins.registry, args.verbose)
        return

    with shutdown_on_signals():
        run_lab(LabOptions(link=args.link, via=tuple(args.via), mtu=args.mtu, count=args.count,
                           interval=args.interval, transfer_bytes=args.transfer_bytes,
                           transfer_time=args.transfer_time, ipv6=args.ipv6, plot=args.plot,
                           plot_data=args.plot_data, compress=args.compress,
                           encrypt=args.encrypt, cipher=args.cipher, offload=args.offload,
                           offload_flags=args.offload_flags, fragment=args.fragment,
                           fragment_timeout=args.fragment_timeout, verbose=args.verbose),
                plugins.registry)
