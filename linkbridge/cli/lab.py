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

    links = args.link or ["udp"]  # --link repeats: each one after the first joins the hosts too
    args.link = links[0]
    if stations_mode(args):
        from linkbridge.lab.stations import run_stations

        with shutdown_on_signals():
            run_stations(args.link, args.stations, args.topology, args.pair_count, args.mtu,
                         plugins.registry, args.verbose, hub=args.hub,
                         more_links=links[1:])
        return

    with shutdown_on_signals():
        run_lab(LabOptions(link=args.link, via=tuple(args.via), mtu=args.mtu, count=args.count,
                           interval=args.interval, transfer_bytes=args.transfer_bytes,
                           transfer_time=args.transfer_time, ipv6=args.ipv6, plot=args.plot,
                           plot_data=args.plot_data, compress=args.compress,
                           queue=args.queue, queue_rate=args.queue_rate,
                           queue_limit=args.queue_limit,
                           encrypt=args.encrypt, cipher=args.cipher, offload=args.offload,
                           offload_flags=args.offload_flags, fragment=args.fragment,
                           fragment_timeout=args.fragment_timeout, repair=args.repair,
                           verbose=args.verbose, more_links=tuple(links[1:]),
                           link_policy=args.link_policy, hold_time=args.hold_time,
                           reorder_wait=args.reorder_wait, keepalive=args.keepalive,
                           fail_link=tuple(args.fail_link),
                           restore_link=tuple(args.restore_link)),
                plugins.registry)


TWO_HOSTS_ONLY = ("via", "count", "interval", "transfer_bytes", "transfer_time", "compress",
                  "encrypt", "cipher", "offload", "offload_flags", "fragment",
                  "fragment_timeout", "ipv6", "plot", "plot_data", "link_policy", "hold_time",
                  "reorder_wait", "keepalive", "fail_link", "restore_link")


def stations_mode(args: argparse.Namespace) -> bool:
    """Whether `lab` runs many stations (--stations); ConfigError for an option of the other
    mode given with it (the two-host lab's probes and layers, or a station option alone)."""
    from linkbridge.cli.parser import build_parser

    defaults = build_parser().parse_args(["lab"])
    if args.stations is None:
        for dest in ("topology", "pair_count", "hub"):
            if getattr(args, dest) != getattr(defaults, dest):
                raise ConfigError(f"--{dest.replace('_', '-')} needs --stations N")
        return False
    for dest in TWO_HOSTS_ONLY:
        if getattr(args, dest) != getattr(defaults, dest):
            flag = "bytes" if dest == "transfer_bytes" else dest.replace("_", "-")
            raise ConfigError(f"--{flag} is an option of the two-host lab, not of --stations")
    return True
