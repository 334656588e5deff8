"""The command-line grammar: `build_parser` and the option groups several commands share.

Only argparse here: what the options mean is up to the command modules.
"""

from __future__ import annotations

import argparse
from typing import TypeAlias

from linkbridge import __version__
from linkbridge.cli.completion import SHELLS
from linkbridge.datapath.compressing import MODES as COMPRESS_MODES
from linkbridge.datapath.encrypting import AUTO, CIPHER_CHOICES
from linkbridge.datapath.pcap import DEFAULT_LIMIT
from linkbridge.datapath.pipeline import DEFAULT_MTU
from linkbridge.datapath.ports import DEFAULT_HOST
from linkbridge.ops.hooks import DEFAULT_TIMEOUT
from linkbridge.ops.logs import FORMATS
from linkbridge.plugin.options import port
from linkbridge.wire.multilink import DEFAULT_HOLD_TIME, RESEQUENCE_WAIT
from linkbridge.wire.multilink import POLICIES as LINK_POLICIES
from linkbridge.wire.repair import MODES as REPAIR_MODES
from linkbridge.wire.stack import FRAGMENT_MODES, OFFLOAD_MODES, QUEUE_MODES

BACKENDS = ("tun", "fou")
FRAGMENT_TIMEOUT = 3.0  # seconds
WATCH_INTERVAL = 1.0  # seconds
REKEY_INTERVAL = 120.0  # seconds, as WireGuard
HANDSHAKE_RETRY = 5.0  # seconds, as WireGuard
REKEY_PACKETS = 1 << 22
EPILOG_UP = """\
examples:
  linkbridge up --link udp:198.18.0.2:5555 --remote 10.0.2.2 --address 10.0.1.2
  linkbridge up --link serial:/dev/ttyUSB0?baud=115200 --remote 10.0.2.0/24
  linkbridge up 2001 2002 10.0.2.2 100     (the original tool's form: RX_PORT TX_PORT REMOTE [MTU])
  linkbridge up --link 'udp:?bind=198.18.1.1:47400' --address 198.19.1.1/16 \\
      --peer b,allowed=198.19.2.0/24,endpoint=198.18.1.2:47400 \\
      --peer c,allowed=198.19.3.0/24,endpoint=198.18.1.3:47400   (multipoint: several peers)
"""

# what add_subparsers() returns; argparse does not export the type
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
# a parser or an argument group of one: where add_argument() puts an option
Options: TypeAlias = "argparse._ActionsContainer"


def build_parser() -> argparse.ArgumentParser:
    """The `linkbridge` parser with every command."""
    parser = argparse.ArgumentParser(
        prog="linkbridge",
        description="Carry IP packets between two machines over any link that moves payloads.",
    )
    parser.add_argument("--version", action="version", version=f"linkbridge {__version__}")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="count", default=0,
                           help="linkbridge's debug lines and tracebacks on errors; -vv adds "
                                "the libraries' own debug lines (pyroute2's netlink messages)")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    parser.add_argument("--log-format", choices=FORMATS, default="text",
                        help="log lines for humans (text, default) or one JSON object per line")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_up_parser(commands)
    add_tunnel_parser(commands)
    add_link_parser(commands)
    add_status_parser(commands)
    add_down_parser(commands)
    add_reload_parser(commands)
    add_links_parser(commands)
    add_plugin_parser(commands)
    add_lab_parser(commands)
    add_completion_parser(commands)
    add_manual_parser(commands)
    add_key_parsers(commands)
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
    up.add_argument("--link", action="append", default=[], metavar="URL",
                    help="link to carry packets over, e.g. udp:HOST:PORT; repeat it for "
                         "several links to the same peer, in order of preference (--link-policy, "
                         "docs/multilink.md)")
    add_multilink_options(up)
    up.add_argument("-c", "--config", metavar="FILE",
                    help="TOML file of tunnels (same keys as these options; several [[tunnel]] "
                         "tables run in one process); options given here override it")
    add_via_option(up)
    add_fragment_options(up)
    add_repair_option(up)
    add_compress_option(up)
    add_queue_options(up)
    add_offload_option(up)
    add_encryption_options(up)
    add_tunnel_options(up)
    up.add_argument("--peer", action="append", default=[], metavar="PEER",
                    help="one peer of a multipoint tunnel (repeatable), as "
                         "NAME,allowed=PREFIX,endpoint=STATION[,key=KEY]: its name, a prefix "
                         "routed to it and that it may send from (allowed= may repeat), its "
                         "station on the link (udp: HOST:PORT; with several --link, "
                         "endpoint=LINK:STATION for each link it uses), its public key (with "
                         "--private-key); instead of --remote, which means one peer "
                         "(docs/multipoint.md)")
    add_port_options(up)
    add_long_running_options(up)
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
    add_repair_option(link)
    add_compress_option(link)
    add_queue_options(link)
    add_encryption_options(link)
    add_port_options(link, required=True)
    add_capture_options(link)


def add_status_parser(commands: Commands) -> None:
    status = commands.add_parser(
        "status", help="show every running tunnel on this machine with its counters",
        description="Ask every running linkbridge tunnel (those this user may see; root sees "
                    "all) for its device, link and counters per side, drops by reason.")
    form = status.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="machine-readable output")
    form.add_argument("--prometheus", action="store_true",
                      help="the counters in the Prometheus text format (--openmetrics: "
                           "OpenMetrics), labelled by tunnel, pid, link, side, direction, reason")
    form.add_argument("--openmetrics", action="store_true",
                      help="the counters in the OpenMetrics 1.0 text format")
    form.add_argument("--watch", action="store_true",
                      help="live packets/s and bytes/s per tunnel side and direction, redrawn "
                           "in place on a terminal, one line per side and refresh into a pipe")
    form.add_argument("--metrics", metavar="[ADDR:]PORT",
                      help="serve the counters over HTTP at http://ADDR:PORT/metrics for "
                           "Prometheus until SIGINT/SIGTERM (ADDR: default 127.0.0.1)")
    status.add_argument("--interval", type=positive_seconds, metavar="SECONDS",
                        help=f"seconds between --watch refreshes (default {WATCH_INTERVAL:g})")
    status.add_argument("--count", type=positive_count, metavar="N",
                        help="stop --watch after N refreshes (default: until interrupted)")


def add_long_running_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "hooks and liveness",
        "Hooks run through /bin/sh with LINKBRIDGE_EVENT, _DEVICE, _MTU, _ADDRESSES, _ROUTES, "
        "_LINK, _REASON and _LINK_STATE set, as the user the process runs as (after --user: "
        "that user). A failing on-up hook removes the tunnel again. Link state: up, stale or "
        "down, from the time since the last frame came in.")
    for event, when in (("up", "once the tunnel is up"),
                        ("down", "before the tunnel is torn down"),
                        ("link-up", "when the link turns up (frames arrive)"),
                        ("link-down", "when a link that was up turns down"),
                        ("peer-up", "when a peer of --peer turns up (frames from it arrive), "
                                    "with LINKBRIDGE_PEER, _PEER_ENDPOINT, _PEER_ALLOWED set"),
                        ("peer-down", "when a peer that was up turns down")):
        group.add_argument(f"--on-{event}", metavar="CMD", help=f"run CMD {when}")
    group.add_argument("--hook-timeout", type=positive_seconds, default=DEFAULT_TIMEOUT,
                       metavar="SECONDS", help="kill a hook that runs longer "
                                               f"(default {DEFAULT_TIMEOUT:g})")
    group.add_argument("--keepalive", type=positive_seconds, metavar="SECONDS",
                       help="send a keepalive frame after SECONDS without traffic to the peer, "
                            "so that a dead peer shows as a down link within 3 x SECONDS (off "
                            "by default: keepalives cost airtime)")
    group.add_argument("--link-timeout", type=positive_seconds, metavar="SECONDS",
                       help="seconds without a received frame until the link is down (stale "
                            "at 60%%; default 2.25 x --keepalive, else 120)")
    group.add_argument("--strict", action="store_true",
                       help="a tunnel of a config file that fails stops them all (default: it "
                            "is retried with backoff while the others run)")


def add_reload_parser(commands: Commands) -> None:
    reload = commands.add_parser(
        "reload", help="make running `up -c FILE` processes re-read their config file",
        description="Send SIGHUP to linkbridge processes that run tunnels from a config file "
                    "(those `status` shows to this user, or the given PIDs): each re-reads "
                    "its file, starts added tunnels, stops removed ones, restarts changed "
                    "ones and leaves the others untouched.")
    reload.add_argument("pid", nargs="*", type=int, metavar="PID",
                        help="only these processes (default: every one running from a file)")


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


def add_plugin_parser(commands: Commands) -> None:
    plugin = commands.add_parser(
        "plugin", help="tools for writing a link plugin: `plugin new NAME`",
        description="Tools for plugin authors (docs/plugins.md). `plugin new NAME` writes a "
                    "package to start a link plugin from.")
    actions = plugin.add_subparsers(dest="plugin_command", metavar="ACTION", required=True)
    new = actions.add_parser(
        "new", help="write linkbridge-NAME/, a link plugin package that works as it is",
        description="Write the directory linkbridge-NAME: a pyproject.toml with the "
                    "`linkbridge` entry point, the package linkbridge_NAME with a working "
                    "NAME: link (each packet one UDP datagram), tests/ running the "
                    "conformance suite, and a README. `pip install -e linkbridge-NAME` and "
                    "`linkbridge links` lists it; `pytest linkbridge-NAME` passes.")
    new.add_argument("name", metavar="NAME",
                     help="the plugin's name: lowercase letters and digits, its URL scheme "
                          "(NAME:), package linkbridge_NAME and distribution linkbridge-NAME")
    new.add_argument("--directory", metavar="DIR", default=".",
                     help="where to write linkbridge-NAME/ (default: the current directory)")


def add_lab_parser(commands: Commands) -> None:
    lab = commands.add_parser(
        "lab", help="demo: two hosts in network namespaces joined by linkbridge",
        description="Create two hosts in network namespaces joined by veth, run a linkbridge "
                    "tunnel on each over the chosen link, ping across and measure TCP "
                    "throughput, print a report and tear everything down. Needs root.")
    lab.add_argument("--link", action="append", metavar="URL",
                     help="link to test, e.g. udp, 'udp:?mtu=1000' (default: udp); repeated: "
                          "several links between the hosts, each over a veth pair of its own, "
                          "in order of preference (docs/multilink.md)")
    add_via_option(lab)
    lab.add_argument("--mtu", type=int, help="tunnel MTU (default: the link's, else 1472)")
    lab.add_argument("--count", type=int, default=20, help="pings to send (default 20)")
    lab.add_argument("--interval", type=float, default=0.05,
                     help="seconds between pings (default 0.05)")
    lab.add_argument("--bytes", type=int, dest="transfer_bytes", metavar="N",
                     help="bytes in the TCP transfer, 0 for none (default 20000000, or about "
                          "4 s' worth on a link that says it is slower)")
    lab.add_argument("--transfer-time", type=positive_seconds, metavar="SECONDS",
                     help="stop the TCP transfer after SECONDS and report what arrived "
                          "(default: when no data moved for 60 s, or 20 round trips)")
    tunnel = lab.add_argument_group(
        "tunnel options", "as for `linkbridge up`, given to both tunnels; the report adds "
                          "what each layer did (--compress vj also turns TCP timestamps off in "
                          "the lab's hosts)")
    add_compress_option(tunnel)
    add_queue_options(tunnel)
    tunnel.add_argument("--encrypt", action="store_true",
                        help="encrypt the link (docs/security.md) with a key pair made for "
                             "the run")
    add_cipher_option(tunnel)
    add_offload_option(tunnel)
    add_fragment_options(tunnel)
    add_repair_option(tunnel)
    add_lab_link_options(lab)
    lab.add_argument("--ipv6", action="store_true",
                     help="also give the tunnels IPv6 addresses (fd00:198:19::1 and ::2) and "
                          "ping and transfer over IPv6; needs a tunnel MTU >= 1280")
    lab.add_argument("--plot", metavar="FILE",
                     help="draw RTT and throughput per direction over time into an SVG file, "
                          "with a sim: link's configured figures as dashed reference lines")
    lab.add_argument("--plot-data", metavar="FILE",
                     help="write the plotted series (and the configured figures) as JSON")
    add_stations_options(lab)


def add_lab_link_options(lab: argparse.ArgumentParser) -> None:
    """The lab's options for several --link: the tunnels' policy, and links cut and restored
    during the run."""
    group = add_multilink_options(lab, defaults=False)
    group.add_argument("--keepalive", type=positive_seconds, metavar="SECONDS",
                       help="the tunnels' --keepalive: with several links, each link's probe "
                            "interval (down after 2.25 of them without a frame)")
    for flag, what in (("fail", "cut link N (1: the first --link) by setting its veth end "
                                "in host A down"),
                       ("restore", "set link N's veth end up again")):
        group.add_argument(f"--{flag}-link", action="append", default=[], metavar="N@SECONDS",
                           help=f"{what}, SECONDS after the pings start (repeatable); the "
                                "report says when tunnel A saw it, when traffic moved and "
                                "what the pings lost")


def add_stations_options(lab: argparse.ArgumentParser) -> None:
    stations = lab.add_argument_group(
        "many stations", "--stations N builds N hosts (A, B, ...) on one switch instead of "
                         "two, each with a multipoint tunnel over the link (sim: "
                         "duplex=half: the radio medium; udp: a mesh; kiss: mode=ax25 or "
                         "ethernet: a KISS hub), pings every ordered "
                         "pair and prints the matrix and each station's counters; with "
                         "--link repeated, a switch per link and every link in every tunnel "
                         "(docs/multipoint.md)")
    stations.add_argument("--stations", type=int, metavar="N",
                          help="number of stations, 2..26")
    stations.add_argument("--topology", metavar="FILE",
                          help="with --stations on sim:, which stations hear which (`A B` "
                               "per line); stations between others forward IP")
    stations.add_argument("--hub", action="store_true",
                          help="with --stations, station A is a hub: it is every other "
                               "station's one peer and forwards IP between them (a hub with "
                               "many sites)")
    stations.add_argument("--pair-count", type=int, default=3, metavar="N",
                          help="with --stations, pings per ordered pair (default 3)")


def add_completion_parser(commands: Commands) -> None:
    completion = commands.add_parser(
        "completion", help="print a shell completion script (bash or zsh)",
        description="Print a completion script for SHELL made from this command line and the "
                    "link plugins installed now: commands, options, their choices, file names, "
                    "link schemes and their ?key= options. Load it at shell start so that "
                    "plugins installed later are completed too.",
        epilog="""\
examples:
  eval "$(linkbridge completion bash)"      (in ~/.bashrc)
  source <(linkbridge completion zsh)       (in ~/.zshrc, after compinit)
""", formatter_class=argparse.RawDescriptionHelpFormatter)
    completion.add_argument("shell", choices=SHELLS, help="the shell to complete for")


def add_manual_parser(commands: Commands) -> None:
    manual = commands.add_parser(
        "manual", help="print a manual page (roff), e.g. `linkbridge manual up | man -l -`",
        description="Print the manual page of linkbridge, or of one COMMAND, in roff as made "
                    "from this command line; an installed wheel also ships them for `man`.")
    manual.add_argument("page", nargs="?", metavar="COMMAND",
                        help="the command whose page to print (default: the overview)")


def add_key_parsers(commands: Commands) -> None:
    commands.add_parser(
        "genkey", help="print a new private key (base64) for --private-key",
        description="Print a new X25519 private key in base64 on stdout. Save it where only "
                    "you can read it: umask 077; linkbridge genkey > private.key")
    commands.add_parser(
        "pubkey", help="read a private key on stdin, print its public key",
        description="Read a base64 private key on stdin and print its public key, the value "
                    "the peer gives as --peer-public-key: linkbridge pubkey < private.key")
    commands.add_parser(
        "genpsk", help="print a new pre-shared key (base64) for --preshared-key",
        description="Print a new random 32-byte pre-shared key in base64 on stdout; give both "
                    "sides the same file: umask 077; linkbridge genpsk > psk.key")


def add_encryption_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "encryption", "authenticated encryption of everything on the link (docs/security.md); "
                      "on when --private-key and --peer-public-key are given")
    group.add_argument("--private-key", metavar="FILE",
                       help="this side's private key, as `linkbridge genkey` writes it; the "
                            "file must not be readable by group or others")
    group.add_argument("--peer-public-key", metavar="KEY",
                       help="the peer's public key (base64, `linkbridge pubkey` of its "
                            "private key)")
    group.add_argument("--preshared-key", metavar="FILE",
                       help="optional pre-shared key file (`linkbridge genpsk`), the same on "
                            "both sides: a second secret mixed into every handshake")
    group.add_argument("--rekey-interval", type=positive_seconds, default=REKEY_INTERVAL,
                       metavar="SECONDS",
                       help="renew the session keys after this long (default "
                            f"{REKEY_INTERVAL:g}; sessions end unrenewed at 1.5 times it)")
    group.add_argument("--handshake-retry", type=positive_seconds, default=HANDSHAKE_RETRY,
                       metavar="SECONDS",
                       help="resend an unanswered handshake after this long, backing off to 8 "
                            f"times it (default {HANDSHAKE_RETRY:g}; raise it on slow radios)")
    group.add_argument("--rekey-packets", type=int, default=REKEY_PACKETS, metavar="N",
                       help=f"also renew the keys after sending N packets (default "
                            f"{REKEY_PACKETS})")
    group.add_argument("--state-dir", metavar="DIR",
                       help="keep the peer's newest handshake timestamp in DIR (made, mode "
                            "0700, if missing) so that a handshake recorded before a restart "
                            "is refused after it too (e.g. /var/lib/linkbridge)")
    add_cipher_option(group)


def add_cipher_option(parser: Options) -> None:
    parser.add_argument("--cipher", choices=CIPHER_CHOICES, default=AUTO,
                        help="the packets' cipher: auto (default) offers both, and the "
                             "handshake takes the one both sides measured cheaper at start; a "
                             "name allows only that cipher (the peer must allow it too)")


def add_via_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--via", action="append", default=[], metavar="URL",
                        help="wrap the link, e.g. --via 'sim:?loss=1%%' (repeatable)")


def positive_number(text: str, unit: str = "") -> float:
    """An argparse type: a number above 0 (of `unit`, for the messages)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number{' of ' + unit if unit else ''}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be more than 0{' ' + unit if unit else ''}")
    return value


def positive_seconds(text: str) -> float:
    """An argparse type: a number of seconds above 0."""
    return positive_number(text, "seconds")


def seconds_or_zero(text: str) -> float:
    """An argparse type: a number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value < 1e9:
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more seconds")
    return value


def positive_count(text: str) -> int:
    """An argparse type: a whole number above 0."""
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number above 0")
    return int(text)


def add_compress_option(parser: Options) -> None:
    parser.add_argument("--compress", choices=COMPRESS_MODES, default="off",
                        help="header compression (docs/compression.md), both sides must agree: "
                             "off (default); vj: RFC 1144 VJ TCP/IP compression, compatible "
                             "with the kernel's cslip (IPv4 TCP without timestamps; no "
                             "fragmentation, encryption or keepalives on the link; after a "
                             "frame lost without a framing error, e.g. not caught by "
                             "serial:?crc=1, only the TCP checksum guards against a packet "
                             "rebuilt with wrong numbers or another connection's header); auto: "
                             "linkbridge's own for IPv4/IPv6 TCP, UDP and ping, with any TCP "
                             "options, that recovers from loss within a round trip")


def add_queue_options(parser: Options) -> None:
    parser.add_argument("--queue", choices=QUEUE_MODES, default="auto",
                        help="the link-aware queue for slow links (docs/queue.md): packets wait "
                             "in linkbridge (one queue per --peer), sent when the link says "
                             "it is ready or at its pace, small ones first, flows "
                             "in turn; TCP retransmissions of a segment queued or sent within "
                             "a link round trip and superseded pure ACKs are dropped. auto "
                             "(default): on where the link's figures (or --queue-rate) say a "
                             "1000-byte frame takes 10 ms or more; on: refuse a link without "
                             "a pace; off")
    parser.add_argument("--queue-rate", type=positive_number, metavar="BIT/S",
                        help="pace the queue at this many bit/s instead of the link's figures "
                             "or word")
    parser.add_argument("--queue-limit", type=positive_count, metavar="PACKETS",
                        help="packets the queue holds at most (default 64; and 32 KB)")


def add_offload_option(parser: Options) -> None:
    parser.add_argument("--offload", choices=OFFLOAD_MODES, default="off",
                        help="TUN offloads (docs/offload.md): TCP super-packets of up to 64 KB "
                             "read and written whole, crossing the link as MTU-sized chunks; "
                             "used once the peer says it takes them (a plain peer gets "
                             "complete packets). off (default); on: refuse options that "
                             "exclude it (--compress, encryption, --pcap, fragmentation, "
                             "--rx/--tx); auto: on unless such an option is given")
    parser.add_argument("--offload-flags", default="", metavar="LIST",
                        help="the offloads asked of the kernel (default all it takes: "
                             "csum,tso4,tso6,uso4,uso6, retried without uso4,uso6); names or "
                             "numbers, e.g. csum,tso4 or 0x8000 to see how a refusal is handled")


def add_fragment_options(parser: Options, default: str = "auto") -> None:
    parser.add_argument("--fragment", choices=FRAGMENT_MODES, default=default,
                        help="split packets larger than the link MTU into fragments: auto (when "
                             "the tunnel MTU exceeds the link's, refused toward a peer that may "
                             "not be linkbridge, e.g. kiss: mode=tun), always (also: the peer is "
                             f"linkbridge), never; both sides must agree (default {default})")
    parser.add_argument("--fragment-timeout", type=positive_seconds, default=FRAGMENT_TIMEOUT,
                        metavar="SECONDS",
                        help="how long a partly received packet waits for its missing "
                             f"fragments (default {FRAGMENT_TIMEOUT:g})")


def add_repair_option(parser: Options) -> None:
    parser.add_argument("--repair", choices=REPAIR_MODES, default="off",
                        help="repair frames lost on the link (docs/repair.md): arq "
                             "(retransmit, a few times at most, in order), fec (parity frames "
                             "as the peer's loss asks, no round trip), auto (arq while the "
                             "link's RTT allows, else fec), off; both sides must agree "
                             "(default off)")


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


def add_multilink_options(parser: argparse.ArgumentParser,
                          defaults: bool = True) -> argparse._ArgumentGroup:
    """--link-policy, --hold-time and --reorder-wait; without `defaults` (the lab's) they
    default to None: `up`'s defaults."""
    group = parser.add_argument_group("several links (--link repeated, docs/multilink.md)")
    group.add_argument("--link-policy", choices=[str(p) for p in LINK_POLICIES],
                       default=str(LINK_POLICIES[0]) if defaults else None,
                       help="failover: all traffic on the first link that is up; duplicate: "
                            "every packet on every link that is up, the receiver keeps the "
                            "first copy; balance: each packet on one link that is up, spread "
                            "by the links' rates, the receiver puts them back in order "
                            f"(default {LINK_POLICIES[0]})")
    group.add_argument("--hold-time", type=positive_seconds,
                       default=DEFAULT_HOLD_TIME if defaults else None,
                       metavar="SECONDS",
                       help="failover returns to a better link only after it stayed up this "
                            f"long (default {DEFAULT_HOLD_TIME:g})")
    group.add_argument("--reorder-wait", type=seconds_or_zero,
                       default=RESEQUENCE_WAIT if defaults else None,
                       metavar="SECONDS",
                       help="balance: how long the receiver holds a packet that came ahead of "
                            f"one sent before it, at most (default {RESEQUENCE_WAIT:g}; 0: deliver "
                            "packets as they come)")
    if defaults:
        group.add_argument("--clamp-mss", action="store_true",
                           help="lower the MSS of TCP SYNs crossing the tunnel (both ways) so "
                                "that full segments go whole over the smallest link that is up")
    return group


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
