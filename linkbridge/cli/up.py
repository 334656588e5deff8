"""`up`, `tunnel` and `link`: every tunnel planned before anything is made, then opened and served.

`up` with the kernel backend is handed to cli/kernel.py.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from linkbridge.cli.installed import InstalledPlugins
from linkbridge.cli.kernel import up_kernel
from linkbridge.cli.options import UpOptions, distinct_ports
from linkbridge.cli.parser import build_parser
from linkbridge.datapath.compressing import OFF, CompressingEndpoint, check_mode
from linkbridge.datapath.encrypting import EncryptingEndpoint, Encryption, allowed_ciphers
from linkbridge.datapath.endpoint import Endpoint
from linkbridge.datapath.fragmenting import FragmentingEndpoint, fragment_frame_size
from linkbridge.datapath.offloading import OffloadingTunnel, frame_problem, path_frame_size
from linkbridge.datapath.pcap import PcapWriter, pcap_tap
from linkbridge.datapath.ports import link_ports, tunnel_ports
from linkbridge.errors import ConfigError, LinkbridgeError
from linkbridge.ops.config import Check, TunnelConfig, apply_command_line, load_config, subparser
from linkbridge.ops.hooks import EVENTS, check_hook_source
from linkbridge.ops.keys import load_keys
from linkbridge.ops.privileges import drop_to, lookup_user
from linkbridge.ops.signals import reload_on_sighup, shutdown_on_signals
from linkbridge.ops.status import collect
from linkbridge.plugin.link import Link
from linkbridge.plugin.registry import LinkRegistry
from linkbridge.plugin.tunnel_info import TunnelInfo
from linkbridge.plugin.url import parse_link_url
from linkbridge.tunnel.session import Policy, Session, TunnelJob
from linkbridge.tunnel.setup import (
    DEFAULT_MTU,
    TunnelSpec,
    open_tun_tunnel,
    parse_interface,
    parse_network,
)
from linkbridge.tunnel.supervisor import Supervisor, serve
from linkbridge.wire.liveness import Thresholds
from linkbridge.wire.offload import MIN_FRAME_SIZE, offload_attempts
from linkbridge.wire.secure import OVERHEAD, Timers


@dataclass(frozen=True)
class LinkSide:
    """A link made from its URL and --via wrappers, not yet open, and the frame size its
    fragmentation layer splits packets to (None: no such layer). Used by `up` and `link`."""

    link: Link
    frame_size: int | None
    fragment_timeout: float
    encryption: Encryption | None = None
    compress: str = OFF

    @classmethod
    def plan(cls, link: Link, fragment: str, fragment_timeout: float,
             tunnel_mtu: int, encryption: Encryption | None = None, compress: str = OFF,
             keepalive: bool = False) -> LinkSide:
        """`link` with the layer a --fragment mode asks for at `tunnel_mtu` (plus what
        encryption adds to a packet) and --compress; ConfigError when the link's frames cannot
        carry them or the layers cannot share the link. Compression never lengthens a packet,
        so it changes no size here."""
        packet = tunnel_mtu + OVERHEAD if encryption and tunnel_mtu else tunnel_mtu
        frame_size = fragment_frame_size(fragment, packet, link.mtu)
        check_mode(compress, fragmenting=frame_size is not None, encrypting=bool(encryption),
                   keepalive=keepalive)
        return cls(link, frame_size, fragment_timeout, encryption, compress)

    def open(self, stack: contextlib.ExitStack) -> Endpoint:
        """Open the link (closed by `stack`) under the layers it has, in the order of
        docs/architecture.md: compress, encrypt, fragment."""
        self.link.open()
        stack.callback(self.link.close)
        below: Endpoint = self.link
        if self.frame_size is not None:
            below = FragmentingEndpoint(self.link, self.frame_size, self.fragment_timeout)
        if self.encryption is not None:
            below = self.encryption.open(below, stack)
        return below if self.compress == OFF else CompressingEndpoint(below, self.compress)


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


def tunnel_spec(options: UpOptions, link_mtu: int | None, overhead: int = 0) -> TunnelSpec:
    """The TUN device asked for; its MTU is --mtu, else the link's (else DEFAULT_MTU, sized
    for a 1500-byte UDP path) less the `overhead` of the layers between (encryption)."""
    return TunnelSpec(
        name=options.name,
        mtu=options.mtu or (link_mtu or DEFAULT_MTU) - overhead,
        remotes=tuple(parse_network(text) for text in options.remote),
        addresses=tuple(parse_interface(text) for text in options.address),
    )


@dataclass(frozen=True)
class UpPlan:
    """One tunnel of `up`, validated before anything is created."""

    options: UpOptions
    spec: TunnelSpec
    link_side: LinkSide | PortsSide
    offload_frame: int | None = None  # the chunk size when the offload layer runs


def offload_frame_size(options: UpOptions, link: Link | None, tunnel_mtu: int,
                       encrypting: bool) -> int | None:
    """The frame size the offload layer chunks to (the link's MTU less what `encrypting` adds
    to each chunk, else the tunnel's MTU), or None when --offload is off, or auto and an option
    excludes it; ConfigError for --offload on with such an option (docs/offload.md says which
    layers switch it off)."""
    if options.offload == "off":
        return None
    overhead = OVERHEAD if encrypting else 0
    link_mtu = link.mtu if link is not None else None
    frame = link_mtu - overhead if link_mtu else tunnel_mtu
    excluded = [why for present, why in (
        (link is None, "local ports (--rx/--tx)"), (options.compress != OFF, "--compress"),
        (bool(options.pcap), "--pcap"), (options.fragment == "always", "--fragment always"),
        (frame < MIN_FRAME_SIZE, f"link frames under {MIN_FRAME_SIZE + overhead} bytes"
                                 + (" with encryption" if encrypting else ""))) if present]
    try:
        offload_attempts(options.offload_flags)
    except ValueError as exc:
        raise ConfigError(f"--offload-flags: {exc}") from None
    if not excluded:
        return frame
    if options.offload == "on":
        raise ConfigError(f"--offload on cannot run with {excluded[0]} (docs/offload.md); "
                          "--offload auto leaves it off instead")
    return None


def plan_up(options: UpOptions, plugins: InstalledPlugins) -> UpPlan:
    """Check one tunnel and make its link (not yet open); ConfigError names what is wrong."""
    if options.link and (options.rx or options.tx):
        raise ConfigError("give either --link or --rx/--tx, not both")
    if options.link:
        encryption = encryption_of(options)
        link = plugins.registry.create_link(options.link, options.via)
        spec = tunnel_spec(options, link.mtu, OVERHEAD if encryption else 0)
        offload = offload_frame_size(options, link, spec.mtu, encryption is not None)
        # offload chunks carry what does not fit a link frame: no fragmentation layer
        fragment = "never" if offload is not None else options.fragment
        return UpPlan(options, spec, LinkSide.plan(link, fragment,
                                                   options.fragment_timeout, spec.mtu,
                                                   encryption, options.compress,
                                                   options.keepalive is not None), offload)
    if not (options.rx and options.tx):
        raise ConfigError("give a link (--link URL) or local ports (--rx PORT --tx PORT)")
    if options.private_key or options.peer_public_key:
        raise ConfigError("encryption needs a link (--link): local ports carry plain packets")
    if options.compress != OFF:
        raise ConfigError("--compress needs a link (--link): local ports carry plain packets")
    offload_frame_size(options, None, 0, False)  # --offload on refuses local ports
    return UpPlan(options, tunnel_spec(options, None),
                  PortsSide(options.rx, options.tx, options.host))


def encryption_of(options: UpOptions | argparse.Namespace) -> Encryption | None:
    """The encrypt layer the options ask for (keys read and checked now), or None."""
    if not (options.private_key or options.peer_public_key or options.preshared_key):
        return None
    if not (options.private_key and options.peer_public_key):
        raise ConfigError("encryption needs both --private-key and --peer-public-key")
    keys = load_keys(options.private_key, options.peer_public_key, options.preshared_key,
                     allowed_ciphers(options.cipher))
    return Encryption(keys, Timers(options.rekey_interval, options.handshake_retry,
                                   options.rekey_packets))


def open_up(plan: UpPlan, stack: contextlib.ExitStack) -> Session:
    """Create one planned tunnel; every undo goes on `stack`."""
    options, spec = plan.options, plan.spec
    offload = plan.offload_frame is not None
    tun = open_tun_tunnel(spec, stack, offload_attempts(options.offload_flags) if offload else None)
    tunnel_side = with_capture(tun, options.pcap, options.pcap_limit, stack)
    link_side = plan.link_side.open(stack)
    info = TunnelInfo(device=tun.name, mtu=spec.mtu,
                      addresses=tuple(map(str, spec.addresses)),
                      routes=tuple(map(str, spec.remotes)), link=link_side.name)
    if plan.offload_frame is None:
        return Session(tunnel_side, link_side, info)
    offloading = OffloadingTunnel(tun, chunk_size(link_side, plan.offload_frame))
    offloading.attach(link_side)
    return Session(offloading, link_side, info, frame_problem)


def chunk_size(link_side: Endpoint, frame_size: int) -> int:
    """The offload layer's chunk size: `frame_size`, or less where the UDP path to the peer is
    narrower; over the encrypt layer, the path of the link below it less the OVERHEAD that
    sealing adds to each chunk."""
    if isinstance(link_side, EncryptingEndpoint):
        return path_frame_size(link_side.link, frame_size, OVERHEAD)
    return path_frame_size(link_side, frame_size)


def config_checks(registry: LinkRegistry) -> dict[str, Check]:
    """Value checks for config keys, so that errors name the key path."""
    return {
        "link": lambda url: registry.link_options(parse_link_url(url)),
        "via": lambda url: registry.wrapper_options(parse_link_url(url)),
        "remote": parse_network,
        "address": parse_interface,
    }


def up_tunnels(args: argparse.Namespace, plugins: InstalledPlugins) -> list[TunnelConfig]:
    """The tunnels `up` runs: those of the -c file with the command line on top, or just one.

    Hooks are taken from the file only when nobody but root or this user can write it.
    """
    if not args.config:
        return [TunnelConfig("", args)]
    if args.legacy:
        raise ConfigError("the positional form cannot be combined with -c/--config")
    parser = subparser(build_parser(), "up")
    from_file = load_config(args.config, parser, config_checks(plugins.registry))
    if any(UpOptions.from_args(tunnel.args).hooks.commands.get(event)
           for tunnel in from_file for event in EVENTS):
        check_hook_source(args.config)
    tunnels = apply_command_line(from_file, args, parser)
    for tunnel in tunnels:
        if tunnel.args.backend != "tun":
            where = f"{tunnel.label}." if tunnel.label else ""
            raise ConfigError(f"{where}backend: config files run TUN tunnels only")
    return tunnels


def tunnel_jobs(tunnels: Sequence[TunnelConfig], plugins: InstalledPlugins) -> list[TunnelJob]:
    """Check every tunnel (ConfigError names the one at fault), then describe how to run it.

    Each start plans the tunnel again, so a retry gets fresh link objects.
    """
    jobs = []
    for tunnel in tunnels:
        options = UpOptions.from_args(tunnel.args)
        try:
            plan_up(options, plugins)
        except ConfigError as exc:
            raise ConfigError(f"{tunnel.label}: {exc}" if tunnel.label else str(exc)) from None

        def opener(stack: contextlib.ExitStack, options: UpOptions = options) -> Session:
            return open_up(plan_up(options, plugins), stack)

        jobs.append(TunnelJob(
            key=options.name or tunnel.label, open=opener, settings=vars(tunnel.args),
            hooks=options.hooks, keepalive=options.keepalive,
            thresholds=Thresholds.choose(options.keepalive, options.link_timeout)))
    return jobs


def one_user(tunnels: Sequence[TunnelConfig]) -> str | None:
    """The --user every tunnel shares (one process runs as one user)."""
    users: set[str | None] = {tunnel.args.user for tunnel in tunnels}
    if len(users) > 1:
        raise ConfigError("one process runs as one user: give every tunnel the same user")
    return users.pop()


def run_tunnels(tunnels: Sequence[TunnelConfig], plugins: InstalledPlugins,
                config: str | None = None,
                reread: Callable[[], Sequence[TunnelConfig]] | None = None) -> None:
    """Check every tunnel, then make them all, drop to --user and serve them until a signal;
    whatever was made is undone on the way out.

    With `reread` (of the `config` file), SIGHUP applies the file's changes, and a tunnel that
    fails is retried with backoff while the others run, unless --strict.
    """
    manager = plugins.manager  # loaded first: a plugin that fails to load leaves nothing made
    jobs = tunnel_jobs(tunnels, plugins)
    user = one_user(tunnels)
    account = lookup_user(user) if user else None
    strict = any(tunnel.args.strict for tunnel in tunnels if "strict" in tunnel.args)
    policy = Policy(retry=reread is not None and not strict, user=user,
                    owner=(account.uid, account.gid) if account else None,
                    config=config)

    def reload() -> list[TunnelJob]:
        assert reread is not None
        again = reread()
        if one_user(again) != user:
            raise ConfigError("the file asks for another --user: restart to change it")
        return tunnel_jobs(again, plugins)

    supervisor = Supervisor(manager, policy)
    with shutdown_on_signals(), reload_on_sighup() as requested:
        # the devices are made as root; closing a TUN fd later still removes it and its routes
        supervisor.run(jobs, requested, reload if reread else None,
                       started=(lambda: drop_to(account)) if account else None)


def cmd_up(args: argparse.Namespace, plugins: InstalledPlugins) -> None:
    """`up`: TUN tunnels in the foreground, or a kernel tunnel set up and left running."""
    if args.backend == "fou":
        options = UpOptions.from_args(args)
        if any(options.hooks.commands.values()) or options.keepalive or options.link_timeout:
            raise ConfigError("hooks, --keepalive and --link-timeout need the tun backend: "
                              "the kernel runs a fou tunnel without linkbridge")
        up_kernel(options, plugins)
        return
    tunnels = up_tunnels(args, plugins)
    run_tunnels(tunnels, plugins, args.config,
                (lambda: up_tunnels(args, plugins)) if args.config else None)


def cmd_tunnel(args: argparse.Namespace, plugins: InstalledPlugins) -> None:
    """`tunnel`: `up` on local ports, with no link of its own."""
    run_tunnels([TunnelConfig("", args)], plugins)


def cmd_link(args: argparse.Namespace, plugins: InstalledPlugins) -> None:
    """`link`: carry an external tunnel's packets between its local ports and a link."""
    distinct_ports(args.rx, args.tx)
    # the external tunnel's MTU is unknown here: `auto` never splits, `always` splits to the link's
    encryption = encryption_of(args)
    planned = LinkSide.plan(plugins.registry.create_link(args.url, args.via), args.fragment,
                            args.fragment_timeout, tunnel_mtu=0, encryption=encryption,
                            compress=args.compress)
    with shutdown_on_signals(), contextlib.ExitStack() as stack:
        ports = link_ports(args.rx, args.tx, args.host)
        stack.callback(ports.close)
        link_side = planned.open(stack)
        info = TunnelInfo(device=ports.name, mtu=planned.link.mtu or 0, addresses=(), routes=(),
                          link=link_side.name)
        tunnel_side = with_capture(ports, args.pcap, args.pcap_limit, stack)
        serve(Session(tunnel_side, link_side, info), plugins.manager)


def cmd_reload(args: argparse.Namespace, plugins: InstalledPlugins) -> None:
    """`reload`: SIGHUP to the processes that run tunnels from a config file."""
    running = {int(doc["pid"]): str(doc["config"]) for doc in collect() if doc.get("config")}
    if not running:
        raise LinkbridgeError("no running linkbridge process of this user runs from a config "
                              "file (`linkbridge status` lists what runs)")
    unknown = [pid for pid in args.pid if pid not in running]
    if unknown:
        raise LinkbridgeError(f"no linkbridge process running from a config file has pid "
                              f"{', '.join(map(str, unknown))}; those that do: "
                              f"{', '.join(map(str, sorted(running)))}")
    for pid in args.pid or sorted(running):
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:
            raise LinkbridgeError(f"process {pid} is gone") from None
        except PermissionError:
            raise LinkbridgeError(f"not permitted to signal process {pid}") from None
        print(f"reloading {pid} ({running[pid]})")
