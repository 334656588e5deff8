"""Command line of the kernel backend: `up --backend fou` and `down`."""

from __future__ import annotations

import argparse
import logging

from linkbridge.errors import ConfigError
from linkbridge.plugin.options import port
from linkbridge.plugin.registry import get_plugin_manager
from linkbridge.plugin.tunnel_info import TunnelInfo
from linkbridge.tunnel.kernel.backend import KernelTunnelSpec, close_fou_tunnel, open_fou_tunnel
from linkbridge.tunnel.kernel.state import KernelTunnelState, StateStore, namespace_dir
from linkbridge.tunnel.setup import DEFAULT_MTU, parse_interface, parse_network

log = logging.getLogger("linkbridge")
BACKENDS = ("tun", "fou")


def add_backend_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=BACKENDS, default="tun",
                        help="tun: userspace TUN device, runs in the foreground (default); fou: "
                             "the kernel's FOU+IPIP tunnel on --rx/--tx, set up, then exits "
                             "(remove it with `linkbridge down`)")


def add_down_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    down = commands.add_parser(
        "down", help="remove a kernel tunnel made by `up --backend fou`",
        description="Remove a kernel (fou backend) tunnel of this network namespace: its "
                    "device, routes, addresses and FOU receive port. Tunnels can be removed "
                    "in any order. The original tool's `down RX_PORT [...]` works too.")
    down.add_argument("tunnel", nargs="*", metavar="NAME|RX_PORT",
                      help="device name (e.g. fou1) or RX port; extra words are ignored so that "
                           "`down` accepts the same arguments as `up`")
    down.add_argument("--rx", type=port, metavar="RX_PORT", help="the tunnel's RX port")


def state_info(state: KernelTunnelState) -> TunnelInfo:
    return TunnelInfo(device=state.name, mtu=state.mtu, addresses=state.addresses,
                      routes=state.remotes,
                      link=f"ports rx={state.host}:{state.rx} tx={state.host}:{state.tx}")


def kernel_spec(args: argparse.Namespace) -> KernelTunnelSpec:
    """The kernel tunnel `up` asks for; options the backend cannot honour are errors."""
    if args.link:
        raise ConfigError("the fou backend talks to a link program on local ports: give "
                          "--rx/--tx and run the link with `linkbridge link URL --rx --tx`")
    refused = [option for option, given in (("--via", args.via), ("--user", args.user),
                                            ("--pcap", args.pcap), ("--config", args.config))
               if given]
    if refused:
        raise ConfigError(f"{refused[0]} is not available with --backend fou (the kernel "
                          "moves the packets, no linkbridge process stays running)")
    if not (args.rx and args.tx):
        raise ConfigError("the fou backend needs local ports: --rx PORT --tx PORT "
                          "(or the positional form RX_PORT TX_PORT REMOTE [MTU])")
    return KernelTunnelSpec(
        rx=args.rx, tx=args.tx, host=args.host, name=args.name, mtu=args.mtu or DEFAULT_MTU,
        remotes=tuple(parse_network(text) for text in args.remote),
        addresses=tuple(parse_interface(text) for text in args.address))


def up_kernel(args: argparse.Namespace) -> None:
    """Set up a kernel tunnel and return; its name goes to stdout for scripts."""
    spec = kernel_spec(args)
    state = open_fou_tunnel(spec, StateStore(namespace_dir()))
    get_plugin_manager().hook.linkbridge_tunnel_up(tunnel=state_info(state))
    log.info("%s up (kernel FOU+IPIP): mtu %d, routes %s, receives on %s:%d, sends to %s:%d; "
             "remove with `linkbridge down %s`", state.name, state.mtu,
             ", ".join(state.remotes) or "none", state.host, state.rx, state.host, state.tx,
             state.name)
    print(state.name)


def cmd_down(args: argparse.Namespace) -> None:
    store = StateStore(namespace_dir())
    if args.rx is not None:
        state = store.find(rx=args.rx)
    elif args.tunnel:
        word = args.tunnel[0]
        state = store.find(rx=int(word)) if word.isdigit() else store.find(name=word)
    else:
        raise ConfigError("give the tunnel: linkbridge down NAME, or --rx RX_PORT")
    get_plugin_manager().hook.linkbridge_tunnel_down(tunnel=state_info(state))
    gone = close_fou_tunnel(state, store)
    if gone:
        log.warning("%s: already gone: %s", state.name, ", ".join(gone))
    log.info("%s down", state.name)
