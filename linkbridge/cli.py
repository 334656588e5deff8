"""The `linkbridge` command line: up, tunnel, link, links, lab."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Sequence

from linkbridge import __version__
from linkbridge.endpoint import Endpoint
from linkbridge.errors import ConfigError, LinkbridgeError
from linkbridge.link import Link
from linkbridge.plugins import LinkRegistry, get_plugin_manager
from linkbridge.ports import DEFAULT_HOST, link_ports, tunnel_ports
from linkbridge.privileges import drop_to, lookup_user
from linkbridge.session import serve
from linkbridge.signals import Shutdown, shutdown_on_signals
from linkbridge.tunnel import (
    DEFAULT_MTU,
    TunnelSpec,
    open_tun_tunnel,
    parse_interface,
    parse_network,
)
from linkbridge.tunnel_info import TunnelInfo

log = logging.getLogger("linkbridge")

EPILOG_UP = """\
examples:
  linkbridge up --link udp:198.18.0.2:5555 --remote 10.0.2.2 --address 10.0.1.2
  linkbridge up --link serial:/dev/ttyUSB0?baud=115200 --remote 10.0.2.0/24
  linkbridge up 2001 2002 10.0.2.2 100     (the original tool's form: RX_PORT TX_PORT REMOTE [MTU])
"""


def port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} out of range 1..65535")
    return value


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
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    up = commands.add_parser(
        "up", help="run a tunnel in the foreground until SIGINT/SIGTERM",
        description="Create a TUN device, route REMOTE through it and carry its packets over a "
                    "link (--link) or over local UDP RX/TX ports (--rx/--tx or the positional "
                    "form). Runs until SIGINT/SIGTERM, then removes the device and routes.",
        epilog=EPILOG_UP, formatter_class=argparse.RawDescriptionHelpFormatter)
    up.add_argument("legacy", nargs="*", metavar="RX_PORT TX_PORT REMOTE [MTU]",
                    help="the original tool's positional form")
    up.add_argument("--link", metavar="URL", help="link to carry packets over, e.g. udp:HOST:PORT")
    add_via_option(up)
    add_tunnel_options(up)
    add_port_options(up)

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
    add_port_options(link, required=True)

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
    return parser


def add_via_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--via", action="append", default=[], metavar="URL",
                        help="wrap the link, e.g. --via 'sim:?loss=1%%' (repeatable)")


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


def cmd_up(args: argparse.Namespace) -> None:
    apply_legacy_form(args)
    if args.link and (args.rx or args.tx):
        raise ConfigError("give either --link or --rx/--tx, not both")
    if not args.link and not (args.rx and args.tx):
        raise ConfigError("give a link (--link URL) or local ports (--rx PORT --tx PORT)")
    manager = get_plugin_manager()
    link = LinkRegistry(manager).create_link(args.link, args.via) if args.link else None
    spec = tunnel_spec(args, link)
    account = lookup_user(args.user) if args.user else None
    with shutdown_on_signals(), contextlib.ExitStack() as stack:
        tun = open_tun_tunnel(spec, stack)
        link_side: Endpoint
        if link is not None:
            link.open()
            stack.callback(link.close)
            link_side = link
        else:
            link_side = tunnel_ports(args.rx, args.tx, args.host)
            stack.callback(link_side.close)
        info = TunnelInfo(device=tun.name, mtu=spec.mtu,
                          addresses=tuple(map(str, spec.addresses)),
                          routes=tuple(map(str, spec.remotes)), link=link_side.name)
        if account is not None:
            drop_to(account)  # closing the TUN fd still removes the device and its routes
        serve(tun, link_side, info, manager)


def cmd_tunnel(args: argparse.Namespace) -> None:
    args.legacy, args.link, args.via = [], None, []
    cmd_up(args)


def cmd_link(args: argparse.Namespace) -> None:
    manager = get_plugin_manager()
    link = LinkRegistry(manager).create_link(args.url, args.via)
    with shutdown_on_signals(), contextlib.ExitStack() as stack:
        ports = link_ports(args.rx, args.tx, args.host)
        stack.callback(ports.close)
        link.open()
        stack.callback(link.close)
        info = TunnelInfo(device=ports.name, mtu=link.mtu or 0, addresses=(), routes=(),
                          link=link.name)
        serve(ports, link, info, manager)


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


def cmd_lab(args: argparse.Namespace) -> None:
    from linkbridge.lab.run import LabOptions, run_lab

    with shutdown_on_signals():
        run_lab(LabOptions(link=args.link, via=tuple(args.via), mtu=args.mtu, count=args.count,
                           interval=args.interval, transfer_bytes=args.transfer_bytes))


COMMANDS = {"up": cmd_up, "tunnel": cmd_tunnel, "link": cmd_link, "links": cmd_links,
            "lab": cmd_lab}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="linkbridge: %(message)s", stream=sys.stderr)
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
    return 0
