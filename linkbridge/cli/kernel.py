"""The kernel backend's commands: `up --backend fou` and `down`."""

from __future__ import annotations

import argparse
import logging

from linkbridge.cli.installed import InstalledPlugins
from linkbridge.cli.options import UpOptions
from linkbridge.datapath.pipeline import DEFAULT_MTU
from linkbridge.errors import ConfigError
from linkbridge.plugin.tunnel_info import TunnelInfo
from linkbridge.tunnel.kernel.backend import KernelTunnelSpec, close_fou_tunnel, open_fou_tunnel
from linkbridge.tunnel.kernel.state import KernelTunnelState, StateStore, namespace_dir
from linkbridge.tunnel.setup import parse_interface, parse_network

log = logging.getLogger("linkbridge")


def state_info(state: KernelTunnelState) -> TunnelInfo:
    """A kernel tunnel as the tunnel up/down hooks see it."""
    return TunnelInfo(device=state.name, mtu=state.mtu, addresses=state.addresses,
                      routes=state.remotes,
                      link=f"ports rx={state.host}:{state.rx} tx={state.host}:{state.tx}")


def kernel_spec(options: UpOptions) -> KernelTunnelSpec:
    """The kernel tunnel `up` asks for; options the backend cannot honour are errors."""
    if options.link:
        raise ConfigError("the fou backend talks to a link program on local ports: give "
                          "--rx/--tx and run the link with `linkbridge link URL --rx --tx`")
    refused = [option for option, given in (("--via", options.via), ("--user", options.user),
                                            ("--pcap", options.pcap),
                                            ("--config", options.config),
                                            ("--compress", options.compress != "off"))
               if given]
    if refused:
        raise ConfigError(f"{refused[0]} is not available with --backend fou (the kernel "
                          "moves the packets, no linkbridge process stays running)")
    if not (options.rx and options.tx):
        raise ConfigError("the fou backend needs local ports: --rx PORT --tx PORT "
                          "(or the positional form RX_PORT TX_PORT REMOTE [MTU])")
    return KernelTunnelSpec(
        rx=options.rx, tx=options.tx, host=options.host, name=options.name,
        mtu=options.mtu or DEFAULT_MTU,
        remotes=tuple(parse_network(text) for text in options.remote),
        addresses=tuple(parse_interface(text) for text in options.address))


def up_kernel(options: UpOptions, plugins: InstalledPlugins) -> None:
    """Set up a kernel tunnel and return; its name goes to stdout for scripts. The plugins
    are loaded first, so that one that fails to load leaves no tunnel behind."""
    hook = plugins.manager.hook
    state = open_fou_tunnel(kernel_spec(options), StateStore(namespace_dir()))
    hook.linkbridge_tunnel_up(tunnel=state_info(state))
    log.info("%s up (kernel FOU+IPIP): mtu %d, routes %s, receives on %s:%d, sends to %s:%d; "
             "remove with `linkbridge down %s`", state.name, state.mtu,
             ", ".join(state.remotes) or "none", state.host, state.rx, state.host, state.tx,
             state.name)
    print(state.name)


def cmd_down(args: argparse.Namespace, plugins: InstalledPlugins) -> None:
    """`down`: remove a kernel tunnel of this network namespace."""
    store = StateStore(namespace_dir())
    if args.rx is not None:
        state = store.find(rx=args.rx)
    elif args.tunnel:
        word = args.tunnel[0]
        state = store.find(rx=int(word)) if word.isdigit() else store.find(name=word)
    else:
        raise ConfigError("give the tunnel: linkbridge down NAME, or --rx RX_PORT")
    plugins.manager.hook.linkbridge_tunnel_down(tunnel=state_info(state))
    gone = close_fou_tunnel(state, store)
    if gone:
        log.warning("%s: already gone: %s", state.name, ", ".join(gone))
    log.info("%s down", state.name)
