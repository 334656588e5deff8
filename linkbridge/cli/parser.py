"""The command-line grammar: `build_parser` and the option groups several commands share.

Only argparse here: what the options mean is up to the command modules.
"""

from __future__ import annotations

import argparse
from typing import TypeAlias

from linkbridge import __version__
from linkbridge.datapath.fragmenting import MODES
from linkbridge.datapath.pcap import DEFAULT_LIMIT
from linkbridge.datapath.ports import DEFAULT_HOST
from linkbridge.ops.logs import FORMATS
from linkbridge.plugin.options import port
from linkbridge.tunnel.setup import DEFAULT_MTU

BACKENDS = ("tun", "fou")
FRAGMENT_TIMEOUT = 3.0  # seconds
EPILOG_UP = """\
examples:
  linkbridge up --link udp:198.18.0.2:5555 --remote 10.0.2.2 --address 10.0.1.2
  linkbridge up --link serial:/dev/ttyUSB0?baud=115200 --remote 10.0.2.0/24
  linkbridge up 2001 2002 10.0.2.2 100     (the original tool's form: RX_PORT TX_PORT REMOTE [MTU])
"""

# what add_subparsers() returns; argparse does not export the type
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def build_parser() -> argparse.ArgumentParser:
    """The `linkbridge` parser with every command."""
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
    add_up_parser(commands)
    add_tunnel_parser(commands)
    add_link_parser(commands)
    add_status_parser(commands)
    add_down_parser(commands)
    add_links_parser(commands)
    add_lab_parser(commands)
    return parser


def add_up_parser(commands: Commands) -> None:
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
    up.add_argument("--backend", choices=BACKENDS, default="tun",
                    help="tun: userspace TUN device, runs in the foreground (default); fou: "
                         "the kernel's FOU+IPIP tunnel on --rx/--tx, set up, then exits "
                         "(remove it with `linkbridge down`)")


def add_tunnel_parser(commands: Commands) -> None:
    tunnel = commands.add_parser(
        "tunnel", help="run only the tunnel half, on local UDP RX/TX ports",
        description="Create the TUN device and expose it as raw IP packets on local UDP ports: "
                    "packets read from the device go to TX_PORT, datagrams received on RX_PORT "
                    "go into the device. A link program written for the original tool works "
                    "against it unchanged.")
    add_tunnel_options(tunnel)
    add_port_options(tunnel, required=True)


def add_link_parser(commands: Commands) -> None:
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


def add_status_parser(commands: Commands) -> None:
    status = commands.add_parser(
        "status", help="show every running tunnel on this machine with its counters",
        description="Ask every running linkbridge tunnel (those this user may see; root sees "
                    "all) for its device, link and counters per side, drops by reason.")
    status.add_argument("--json", action="store_true", help="machine-readable output")


def add_down_parser(commands: Commands) -> None:
    down = commands.add_parser(
        "down", help="remove a kernel tunnel made by `up --backend fou`",
        description="Remove a kernel (fou backend) tunnel of this network namespace: its "
                    "device, routes, addresses and FOU receive port. Tunnels can be removed "
                    "in any order. The original tool's `down RX_PORT [...]` works too.")
    down.add_argument("tunnel", nargs="*", metavar="NAME|RX_PORT",
                      help="device name (e.g. fou1) or RX port; extra words are ignored so that "
                           "`down` accepts the same arguments as `up`")
    down.add_argument("--rx", type=port, metavar="RX_PORT", help="the tunnel's RX port")


def add_links_parser(commands: Commands) -> None:
    links = commands.add_parser("links", help="list installed link plugins and their options")
    links.add_argument("--json", action="store_true", help="machine-readable output")


def add_lab_parser(commands: Commands) -> None:
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


def add_via_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--via", action="append", default=[], metavar="URL",
                        help="wrap the link, e.g. --via 'sim:?loss=1%%' (repeatable)")


def positive_seconds(text: str) -> float:
    """An argparse type: a number of seconds above 0."""
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
    parser.add_argument("--fragment-timeout", type=positive_seconds, default=FRAGMENT_TIMEOUT,
                        metavar="SECONDS",
                        help="how long a partly received packet waits for its missing "
                             f"fragments (default {FRAGMENT_TIMEOUT:g})")


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
