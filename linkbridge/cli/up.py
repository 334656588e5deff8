"""`up`, `tunnel` and `link`: every tunnel planned before anything is made, then opened and served.

`up` with the kernel backend is handed to cli/kernel.py.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from linkbridge.cli.installed import InstalledPlugins
from linkbridge.cli.kernel import up_kernel
from linkbridge.cli.options import UpOptions
from linkbridge.cli.parser import build_parser
from linkbridge.datapath.endpoint import Endpoint
from linkbridge.datapath.fragmenting import FragmentingEndpoint, fragment_frame_size
from linkbridge.datapath.pcap import PcapWriter, pcap_tap
from linkbridge.datapath.ports import link_ports, tunnel_ports
from linkbridge.errors import ConfigError
from linkbridge.ops.config import Check, TunnelConfig, apply_command_line, load_config, subparser
from linkbridge.ops.privileges import Account, drop_to, lookup_user
from linkbridge.ops.signals import shutdown_on_signals
from linkbridge.ops.status import publish_status
from linkbridge.plugin.link import Link
from linkbridge.plugin.registry import LinkRegistry
from linkbridge.plugin.tunnel_info import TunnelInfo
from linkbridge.plugin.url import parse_link_url
from linkbridge.tunnel.session import Session, serve, serve_all
from linkbridge.tunnel.setup import (
    DEFAULT_MTU,
    TunnelSpec,
    open_tun_tunnel,
    parse_interface,
    parse_network,
)


@dataclass(frozen=True)
class LinkSide:
    """A link made from its URL and --via wrappers, not yet open, and the frame size its
    fragmentation layer splits packets to (None: no such layer). Used by `up` and `link`."""

    link: Link
    frame_size: int | None
    fragment_timeout: float

    @classmethod
    def plan(cls, link: Link, fragment: str, fragment_timeout: float,
             tunnel_mtu: int) -> LinkSide:
        """`link` with the layer a --fragment mode asks for at `tunnel_mtu`; ConfigError when
        the link's frames cannot carry the tunnel's packets."""
        return cls(link, fragment_frame_size(fragment, tunnel_mtu, link.mtu), fragment_timeout)

    def open(self, stack: contextlib.ExitStack) -> Endpoint:
        """Open the link (closed by `stack`), behind the fragmentation layer when it has one."""
        self.link.open()
        stack.callback(self.link.close)
        if self.frame_size is None:
            return self.link
        return FragmentingEndpoint(self.link, self.frame_size, self.fragment_timeout)


@dataclass(frozen=True)
class PortsSide:
    """Local UDP ports in place of a link, for an external link program (`up --rx --tx`)."""

    rx: int
    tx: int
    host: str

    def open(self, stack: contextlib.ExitStack) -> Endpoint:
        """Bind the ports (closed by `stack`)."""
        ports = tunnel_ports(self.rx, self.tx, self.host)
        stack.callback(ports.close)
        return ports


def with_capture(endpoint: Endpoint, pcap: str | None, limit: int,
                 stack: contextlib.ExitStack) -> Endpoint:
    """`endpoint` recorded into the --pcap file when one is asked for (opened before --user)."""
    if not pcap:
        return endpoint
    writer = PcapWriter.create(pcap, limit)
    stack.callback(writer.close)
    return pcap_tap(endpoint, writer)


def tunnel_spec(options: UpOptions, link_mtu: int | None) -> TunnelSpec:
    """The TUN device asked for; its MTU is --mtu, else the link's, else DEFAULT_MTU."""
    return TunnelSpec(
        name=options.name,
        mtu=options.mtu or link_mtu or DEFAULT_MTU,
        remotes=tuple(parse_network(text) for text in options.remote),
        addresses=tuple(parse_interface(text) for text in options.address),
    )


@dataclass(frozen=True)
class UpPlan:
    """One tunnel of `up`, validated before anything is created."""

    options: UpOptions
    spec: TunnelSpec
    link_side: LinkSide | PortsSide


def plan_up(options: UpOptions, plugins: InstalledPlugins) -> UpPlan:
    """Check one tunnel and make its link (not yet open); ConfigError names what is wrong."""
    if options.link and (options.rx or options.tx):
        raise ConfigError("give either --link or --rx/--tx, not both")
    if options.link:
        link = plugins.registry.create_link(options.link, options.via)
        spec = tunnel_spec(options, link.mtu)
        return UpPlan(options, spec, LinkSide.plan(link, options.fragment,
                                                   options.fragment_timeout, spec.mtu))
    if not (options.rx and options.tx):
        raise ConfigError("give a link (--link URL) or local ports (--rx PORT --tx PORT)")
    return UpPlan(options, tunnel_spec(options, None),
                  PortsSide(options.rx, options.tx, options.host))


def open_up(plan: UpPlan, stack: contextlib.ExitStack, account: Account | None) -> Session:
    """Create one planned tunnel; every undo goes on `stack`."""
    options, spec = plan.options, plan.spec
    tun = open_tun_tunnel(spec, stack)
    tunnel_side = with_capture(tun, options.pcap, options.pcap_limit, stack)
    link_side = plan.link_side.open(stack)
    info = TunnelInfo(device=tun.name, mtu=spec.mtu,
                      addresses=tuple(map(str, spec.addresses)),
                      routes=tuple(map(str, spec.remotes)), link=link_side.name)
    stack.enter_context(publish_status(info, tunnel_side, link_side,
                                       *((account.uid, account.gid) if account else ())))
    return Session(tunnel_side, link_side, info)


def config_checks(registry: LinkRegistry) -> dict[str, Check]:
    """Value checks for config keys, so that errors name the key path."""
    return {
        "link": lambda url: registry.link_options(parse_link_url(url)),
        "via": lambda url: registry.wrapper_options(parse_link_url(url)),
        "remote": parse_network,
        "address": parse_interface,
    }


def up_tunnels(args: argparse.Namespace, plugins: InstalledPlugins) -> list[TunnelConfig]:
    """The tunnels `up` runs: those of the -c file with the command line on top, or just one."""
    if not args.config:
        return [TunnelConfig("", args)]
    if args.legacy:
        raise ConfigError("the positional form cannot be combined with -c/--config")
    parser = subparser(build_parser(), "up")
    tunnels = apply_command_line(load_config(args.config, parser, config_checks(plugins.registry)),
                                 args, parser)
    for tunnel in tunnels:
        if tunnel.args.backend != "tun":
            where = f"{tunnel.label}." if tunnel.label else ""
            raise ConfigError(f"{where}backend: config files run TUN tunnels only")
    return tunnels


def run_tunnels(tunnels: Sequence[TunnelConfig], plugins: InstalledPlugins) -> None:
    """Plan every tunnel, then make them all, drop to --user and serve them until a signal;
    whatever was made is undone on the way out."""
    manager = plugins.manager  # loaded first: a plugin that fails to load leaves nothing made
    plans = []
    for tunnel in tunnels:
        try:
            plans.append(plan_up(UpOptions.from_args(tunnel.args), plugins))
        except ConfigError as exc:
            raise ConfigError(f"{tunnel.label}: {exc}" if tunnel.label else str(exc)) from None
    users = {plan.options.user for plan in plans}
    if len(users) > 1:
        raise ConfigError("one process runs as one user: give every tunnel the same user")
    user = users.pop()
    account = lookup_user(user) if user else None
    with shutdown_on_signals(), contextlib.ExitStack() as stack:
        sessions = [open_up(plan, stack, account) for plan in plans]
        if account is not None:
            drop_to(account)  # closing the TUN fd still removes the device and its routes
        serve_all(sessions, manager)


def cmd_up(args: argparse.Namespace, plugins: InstalledPlugins) -> None:
    """`up`: TUN tunnels in the foreground, or a kernel tunnel set up and left running."""
    if args.backend == "fou":
        up_kernel(UpOptions.from_args(args), plugins)
        return
    run_tunnels(up_tunnels(args, plugins), plugins)


def cmd_tunnel(args: argparse.Namespace, plugins: InstalledPlugins) -> None:
    """`tunnel`: `up` on local ports, with no link of its own."""
    run_tunnels([TunnelConfig("", args)], plugins)


def cmd_link(args: argparse.Namespace, plugins: InstalledPlugins) -> None:
    """`link`: carry an external tunnel's packets between its local ports and a link."""
    # the external tunnel's MTU is unknown here: `auto` never splits, `always` splits to the link's
    planned = LinkSide.plan(plugins.registry.create_link(args.url, args.via), args.fragment,
                            args.fragment_timeout, tunnel_mtu=0)
    with shutdown_on_signals(), contextlib.ExitStack() as stack:
        ports = link_ports(args.rx, args.tx, args.host)
        stack.callback(ports.close)
        link_side = planned.open(stack)
        info = TunnelInfo(device=ports.name, mtu=planned.link.mtu or 0, addresses=(), routes=(),
                          link=link_side.name)
        tunnel_side = with_capture(ports, args.pcap, args.pcap_limit, stack)
        stack.enter_context(publish_status(info, tunnel_side, link_side))
        serve(tunnel_side, link_side, info, plugins.manager)
