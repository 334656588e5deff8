"""The `linkbridge` command line: up, tunnel, link, links, lab."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import pluggy

from linkbridge import __version__
from linkbridge.cli.kernel import add_backend_option, add_down_parser, cmd_down, up_kernel
from linkbridge.datapath.endpoint import Endpoint
from linkbridge.datapath.fragmenting import MODES, FragmentingEndpoint, fragment_frame_size
from linkbridge.datapath.pcap import DEFAULT_LIMIT, PcapWriter, pcap_tap
from linkbridge.datapath.ports import DEFAULT_HOST, link_ports, tunnel_ports
from linkbridge.errors import ConfigError, LinkbridgeError
from linkbridge.ops.config import Check, TunnelConfig, apply_command_line, load_config, subparser
from linkbridge.ops.logs import FORMATS, setup_logging
from linkbridge.ops.privileges import Account, drop_to, lookup_user
from linkbridge.ops.signals import Shutdown, shutdown_on_signals
from linkbridge.ops.status import collect, format_table, publish_status
from linkbridge.plugin.link import Link
from linkbridge.plugin.options import port
from linkbridge.plugin.registry import LinkRegistry, get_plugin_manager
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

log = logging.getLogger("linkbridge")

EPILOG_UP = """\
examples:
  linkbridge up --link udp:198.18.0.2:5555 --remote 10.0.2.2 --address 10.0.1.2
  linkbridge up --link serial:/dev/ttyUSB0?baud=115200 --remote 10.0.2.0/24
  linkbridge up 2001 2002 10.0.2.2 100     (the original tool's form: RX_PORT TX_PORT REMOTE [MTU])
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="linkbridge",
        description="Carry IP packets between two machines over any link that moves payloads.",
    )
    parser.add_argument("--version", action="version", version=f"linkbridge {__version__}")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true",
                           help="debug logging and tracebacks on errors")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    parser.add_argument("--log-format", choices=FORMATS, default="text",
                        help="log lines for humans (text, default) or one JSON object per line")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    up = commands.add_parser(
        "up", help="run a tunnel in the foreground until SIGINT/SIGTERM",
        description="Create a TUN device, route REMOTE through it and carry its packets over a "
                    "link (--link) or over local UDP RX/TX ports (--rx/--tx or the positional "
                    "form). Runs until SIGINT/SIGTERM, then removes the device and routes. "
                    "With --backend fou it sets up a kernel FOU+IPIP tunnel on the local "
                    "ports instead and exits; `linkbridge down` removes it.",
        epilog=EPILOG_UP, formatter_class=argparse.RawDescriptionHelpFormatter)
    up.add_argument("legacy", nargs="*", metavar="RX_PORT TX_PORT REMOTE [MTU]",
                    help="the original tool's positional form")
    up.add_argument("--link", metavar="URL", help="link to carry packets over, e.g. udp:HOST:PORT")
    up.add_argument("-c", "--config", metavar="FILE",
                    help="TOML file of tunnels (same keys as these options; several [[tunnel]] "
                         "tables run in one process); options given here override it")
    add_via_option(up)
    add_fragment_options(up)
    add_tunnel_options(up)
    add_port_options(up)
    add_backend_option(up)

    tunnel = commands.add_parser(
        "tunnel", help="run only the tunnel half, on local UDP RX/TX ports",
        description="Create the TUN device and expose it as raw IP packets on local UDP ports: "
                    "packets read from the device go to TX_PORT, datagrams received on RX_PORT "
                    "go into the device. A link program written for the original tool works "
                    "against it unchanged.")
    add_tunnel_options(tunnel)
    add_port_options(tunnel, required=True)

    link = commands.add_parser(
        "link", help="run only the link half, serving an external tunnel on local ports",
        description="Carry packets between local UDP ports of an external tunnel (e.g. the "
                    "original kernel FOU script, or `linkbridge tunnel`) and a link: listen on "
                    "TX_PORT, deliver received packets to RX_PORT.")
    link.add_argument("url", metavar="URL", help="the link, e.g. serial:/dev/ttyUSB0?baud=115200")
    add_via_option(link)
    add_fragment_options(link, default="never")
    add_port_options(link, required=True)
    add_capture_options(link)

    status = commands.add_parser(
        "status", help="show every running tunnel on this machine with its counters",
        description="Ask every running linkbridge tunnel (those this user may see; root sees "
                    "all) for its device, link and counters per side, drops by reason.")
    status.add_argument("--json", action="store_true", help="machine-readable output")

    add_down_parser(commands)

    links = commands.add_parser("links", help="list installed link plugins and their options")
    links.add_argument("--json", action="store_true", help="machine-readable output")

    lab = commands.add_parser(
        "lab", help="demo: two hosts in network namespaces joined by linkbridge",
        description="Create two hosts in network namespaces joined by veth, run a linkbridge "
                    "tunnel on each over the chosen link, ping across and measure TCP "
                    "throughput, print a report and tear everything down. Needs root.")
    lab.add_argument("--link", default="udp", metavar="URL",
                     help="link to test, e.g. udp, 'udp:?mtu=1000' (default: udp)")
    add_via_option(lab)
    lab.add_argument("--mtu", type=int, help="tunnel MTU (default: the link's, else 1472)")
    lab.add_argument("--count", type=int, default=20, help="pings to send (default 20)")
    lab.add_argument("--interval", type=float, default=0.05,
                     help="seconds between pings (default 0.05)")
    lab.add_argument("--bytes", type=int, default=20_000_000, dest="transfer_bytes",
                     help="bytes in the TCP transfer (default 20000000)")
    lab.add_argument("--ipv6", action="store_true",
                     help="also give the tunnels IPv6 addresses (fd00:198:19::1 and ::2) and "
                          "ping and transfer over IPv6; needs a tunnel MTU >= 1280")
    return parser


def add_via_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--via", action="append", default=[], metavar="URL",
                        help="wrap the link, e.g. --via 'sim:?loss=1%%' (repeatable)")


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be more than 0 seconds")
    return value


def add_fragment_options(parser: argparse.ArgumentParser, default: str = "auto") -> None:
    parser.add_argument("--fragment", choices=MODES, default=default,
                        help="split packets larger than the link MTU into fragments: auto (when "
                             "the tunnel MTU exceeds the link's), always, never; both sides "
                             f"must agree (default {default})")
    parser.add_argument("--fragment-timeout", type=positive_seconds, default=3.0,
                        metavar="SECONDS",
                        help="how long a partly received packet waits for its missing "
                             "fragments (default 3)")


def add_tunnel_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--remote", action="append", default=[], metavar="NET",
                        help="address or CIDR subnet to route through the tunnel (repeatable)")
    parser.add_argument("--address", action="append", default=[], metavar="ADDR[/LEN]",
                        help="local address to put on the tunnel device (repeatable)")
    parser.add_argument("--mtu", type=int, help=f"tunnel MTU, >= 68 (default: the link's MTU "
                                                f"if it has one, else {DEFAULT_MTU})")
    parser.add_argument("--name", help="device name (default: first free lbN)")
    parser.add_argument("--user", metavar="NAME",
                        help="drop root and run as this user once the device and routes exist")
    add_capture_options(parser)


def add_capture_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pcap", metavar="FILE",
                        help="record the packets crossing the tunnel, both ways, in pcap format "
                             "(raw IP; tcpdump -r / Wireshark read it)")
    parser.add_argument("--pcap-limit", type=int, default=DEFAULT_LIMIT, metavar="BYTES",
                        help=f"stop recording when the file reaches this size "
                             f"(default {DEFAULT_LIMIT})")


def add_port_options(parser: argparse.ArgumentParser, required: bool = False) -> None:
    parser.add_argument("--rx", type=port, required=required, metavar="RX_PORT",
                        help="UDP port where the tunnel receives packets from the link")
    parser.add_argument("--tx", type=port, required=required, metavar="TX_PORT",
                        help="UDP port where the tunnel sends packets for the link")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address the local ports use (default {DEFAULT_HOST})")


def apply_legacy_form(args: argparse.Namespace) -> None:
    """Map `up RX_PORT TX_PORT REMOTE [MTU]` onto --rx/--tx/--remote/--mtu."""
    if not args.legacy:
        return
    if len(args.legacy) not in (3, 4):
        raise ConfigError("positional form is: linkbridge up RX_PORT TX_PORT REMOTE_IP [MTU]")
    if args.link or args.rx or args.tx or args.remote:
        raise ConfigError("use either the positional form or --link/--rx/--tx/--remote, not both")
    try:
        args.rx, args.tx = port(args.legacy[0]), port(args.legacy[1])
        if len(args.legacy) == 4:
            args.mtu = int(args.legacy[3])
    except (ValueError, argparse.ArgumentTypeError) as exc:
        raise ConfigError(f"bad positional argument: {exc}") from None
    args.remote = [args.legacy[2]]


def tunnel_spec(args: argparse.Namespace, link: Link | None) -> TunnelSpec:
    link_mtu = link.mtu if link is not None else None
    return TunnelSpec(
        name=args.name,
        mtu=args.mtu or link_mtu or DEFAULT_MTU,
        remotes=tuple(parse_network(text) for text in args.remote),
        addresses=tuple(parse_interface(text) for text in args.address),
    )


@dataclass(frozen=True)
class UpPlan:
    """One tunnel of `up`, validated before anything is created."""

    args: argparse.Namespace
    link: Link | None
    spec: TunnelSpec
    frame_size: int | None


def plan_up(args: argparse.Namespace, manager: pluggy.PluginManager) -> UpPlan:
    apply_legacy_form(args)
    if args.link and (args.rx or args.tx):
        raise ConfigError("give either --link or --rx/--tx, not both")
    if not args.link and not (args.rx and args.tx):
        raise ConfigError("give a link (--link URL) or local ports (--rx PORT --tx PORT)")
    link = LinkRegistry(manager).create_link(args.link, args.via) if args.link else None
    spec = tunnel_spec(args, link)
    frame_size = (fragment_frame_size(args.fragment, spec.mtu, link.mtu)
                  if link is not None else None)
    return UpPlan(args, link, spec, frame_size)


def open_up(plan: UpPlan, stack: contextlib.ExitStack, account: Account | None) -> Session:
    """Create one planned tunnel; every undo goes on `stack`."""
    args, link, spec, frame_size = plan.args, plan.link, plan.spec, plan.frame_size
    tun = open_tun_tunnel(spec, stack)
    tunnel_side = with_capture(tun, args, stack)
    link_side: Endpoint
    if link is not None:
        link.open()
        stack.callback(link.close)
        link_side = link
        if frame_size is not None:
            link_side = FragmentingEndpoint(link, frame_size, args.fragment_timeout)
    else:
        link_side = tunnel_ports(args.rx, args.tx, args.host)
        stack.callback(link_side.close)
    info = TunnelInfo(device=tun.name, mtu=spec.mtu,
                      addresses=tuple(map(str, spec.addresses)),
                      routes=tuple(map(str, spec.remotes)), link=link_side.name)
    stack.enter_context(publish_status(info, tunnel_side, link_side,
                                       *((account.uid, account.gid) if account else ())))
    return Session(tunnel_side, link_side, info)


def with_capture(endpoint: Endpoint, args: argparse.Namespace,
                 stack: contextlib.ExitStack) -> Endpoint:
    """`endpoint` recorded into the --pcap file when one is asked for (opened before --user)."""
    if not getattr(args, "pcap", None):
        return endpoint
    writer = PcapWriter.create(args.pcap, args.pcap_limit)
    stack.callback(writer.close)
    return pcap_tap(endpoint, writer)


def config_checks(manager: pluggy.PluginManager) -> dict[str, Check]:
    """Value checks for config keys, so that errors name the key path."""
    registry = LinkRegistry(manager)
    return {
        "link": lambda url: registry.link_options(parse_link_url(url)),
        "via": lambda url: registry.wrapper_options(parse_link_url(url)),
        "remote": parse_network,
        "address": parse_interface,
    }


def up_tunnels(args: argparse.Namespace, manager: pluggy.PluginManager) -> list[TunnelConfig]:
    """The tunnels `up` runs: those of the -c file with the command line on top, or just one."""
    if not getattr(args, "config", None):
        return [TunnelConfig("", args)]
    if args.legacy:
        raise ConfigError("the positional form cannot be combined with -c/--config")
    parser = subparser(build_parser(), "up")
    tunnels = apply_command_line(load_config(args.config, parser, config_checks(manager)),
                                 args, parser)
    for tunnel in tunnels:
        if getattr(tunnel.args, "backend", "tun") != "tun":
            where = f"{tunnel.label}." if tunnel.label else ""
            raise ConfigError(f"{where}backend: config files run TUN tunnels only")
    return tunnels


def cmd_up(args: argparse.Namespace) -> None:
    if getattr(args, "backend", "tun") == "fou":
        apply_legacy_form(args)
        up_kernel(args)
        return
    manager = get_plugin_manager()
    plans = []
    for tunnel in up_tunnels(args, manager):
        try:
            plans.append(plan_up(tunnel.args, manager))
        except ConfigError as exc:
            raise ConfigError(f"{tunnel.label}: {exc}" if tunnel.label else str(exc)) from None
    users = {plan.args.user for plan in plans}
    if len(users) > 1:
        raise ConfigError("one process runs as one user: give every tunnel the same user")
    user = users.pop()
    account = lookup_user(user) if user else None
    with shutdown_on_signals(), contextlib.ExitStack() as stack:
        sessions = [open_up(plan, stack, account) for plan in plans]
        if account is not None:
            drop_to(account)  # closing the TUN fd still removes the device and its routes
        serve_all(sessions, manager)


def cmd_tunnel(args: argparse.Namespace) -> None:
    args.legacy, args.link, args.via = [], None, []
    cmd_up(args)


def cmd_link(args: argparse.Namespace) -> None:
    manager = get_plugin_manager()
    link = LinkRegistry(manager).create_link(args.url, args.via)
    # the external tunnel's MTU is unknown here: `auto` never splits, `always` splits to the link's
    frame_size = fragment_frame_size(args.fragment, 0, link.mtu)
    with shutdown_on_signals(), contextlib.ExitStack() as stack:
        ports = link_ports(args.rx, args.tx, args.host)
        stack.callback(ports.close)
        link.open()
        stack.callback(link.close)
        link_side: Endpoint = link
        if frame_size is not None:
            link_side = FragmentingEndpoint(link, frame_size, args.fragment_timeout)
        info = TunnelInfo(device=ports.name, mtu=link.mtu or 0, addresses=(), routes=(),
                          link=link_side.name)
        tunnel_side = with_capture(ports, args, stack)
        stack.enter_context(publish_status(info, tunnel_side, link_side))
        serve(tunnel_side, link_side, info, manager)


def cmd_links(args: argparse.Namespace) -> None:
    rows = LinkRegistry(get_plugin_manager()).describe()
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


def cmd_status(args: argparse.Namespace) -> None:
    documents = collect()
    print(json.dumps(documents, indent=2) if args.json else format_table(documents))


def cmd_lab(args: argparse.Namespace) -> None:
    from linkbridge.lab.run import LabOptions, run_lab

    with shutdown_on_signals():
        run_lab(LabOptions(link=args.link, via=tuple(args.via), mtu=args.mtu, count=args.count,
                           interval=args.interval, transfer_bytes=args.transfer_bytes,
                           ipv6=args.ipv6))


COMMANDS = {"up": cmd_up, "tunnel": cmd_tunnel, "link": cmd_link, "links": cmd_links,
            "down": cmd_down,
            "status": cmd_status,
            "lab": cmd_lab}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    setup_logging(level, args.log_format)
    try:
        COMMANDS[args.command](args)
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
