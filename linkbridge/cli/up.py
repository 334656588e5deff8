"""`up`, `tunnel` and `link`: every tunnel planned before anything is made, then opened and served.

`up` with the kernel backend is handed to cli/kernel.py.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from linkbridge.cli.installed import InstalledPlugins
from linkbridge.cli.kernel import up_kernel
from linkbridge.cli.options import UpOptions, distinct_ports
from linkbridge.cli.parser import build_parser
from linkbridge.datapath.encrypting import allowed_ciphers
from linkbridge.datapath.pipeline import (
    ENCRYPT_NEEDS_LINK,
    Capture,
    LinkBelow,
    Links,
    LocalPorts,
    Lower,
    Pipeline,
    Plan,
    TunDevice,
    Upper,
    tunnel_mtu,
    validate,
)
from linkbridge.errors import ConfigError, LinkbridgeError
from linkbridge.ops.config import Check, TunnelConfig, apply_command_line, load_config, subparser
from linkbridge.ops.hooks import EVENTS, check_hook_source
from linkbridge.ops.keys import load_keys
from linkbridge.ops.privileges import drop_to, lookup_user
from linkbridge.ops.signals import reload_on_sighup, shutdown_on_signals
from linkbridge.ops.status import collect
from linkbridge.plugin.registry import LinkRegistry
from linkbridge.plugin.url import parse_link_url
from linkbridge.tunnel.netconf import IPInterface
from linkbridge.tunnel.pipeline import open_link, open_tunnel
from linkbridge.tunnel.session import Policy, Session, TunnelJob
from linkbridge.tunnel.setup import TunnelSpec, parse_interface, parse_network
from linkbridge.tunnel.supervisor import Supervisor, serve
from linkbridge.wire.keys import StaticKeys, decode_key
from linkbridge.wire.liveness import Thresholds
from linkbridge.wire.multilink import DEFAULT_PROBE_INTERVAL
from linkbridge.wire.multilink import Policy as LinkPolicy
from linkbridge.wire.peers import PeerTable, parse_peer
from linkbridge.wire.secure import Timers
from linkbridge.wire.stack import Compress, Encrypt, Fragment, Offload, Queue, Repair


@dataclass(frozen=True)
class UpPlan:
    """One tunnel of `up`, validated before anything is created: its TUN device and the
    pipeline below it."""

    options: UpOptions
    spec: TunnelSpec
    pipeline: Plan


def plan_up(options: UpOptions, plugins: InstalledPlugins) -> UpPlan:
    """Check one tunnel and make its link (not yet open); ConfigError names what is wrong."""
    if options.link and (options.rx or options.tx):
        raise ConfigError("give either --link or --rx/--tx, not both")
    addresses = tuple(parse_interface(text) for text in options.address)
    pipeline = pipeline_of(options, plugins, peers_of(options, addresses))
    spec = TunnelSpec(
        name=options.name,
        mtu=tunnel_mtu(pipeline),
        remotes=tuple(parse_network(text) for text in options.remote)
        + (pipeline.peers.prefixes() if pipeline.peers else ()),
        addresses=addresses,
    )
    return UpPlan(options, spec, validate(pipeline))


def peers_of(options: UpOptions, addresses: Sequence[IPInterface]) -> PeerTable | None:
    """The peer table of a multipoint tunnel (--peer), its broadcast addresses those of the
    IPv4 `addresses`' subnets; None for a tunnel to one peer (--remote)."""
    if not options.peer:
        return None
    if options.remote:
        raise ConfigError("give --remote (the routes to one peer) or --peer, not both")
    return PeerTable(map(parse_peer, options.peer),
                     [address.network.broadcast_address for address in addresses
                      if address.version == 4 and address.network.prefixlen < 31])


def pipeline_of(options: UpOptions, plugins: InstalledPlugins,
                peers: PeerTable | None = None) -> Pipeline:
    """The pipeline `options` ask for under a TUN device: keys read, the link made from its
    URL and --via wrappers (not yet open), or local ports for an external link program."""
    peer_keys: dict[str, StaticKeys] = {}
    if options.link:
        encrypt, peer_keys = ((encrypt_of(options), {}) if peers is None
                              else peers_encrypt(options, peers))
        below: LinkBelow | LocalPorts = LinkBelow(
            plugins.registry.create_link(options.link[0], options.via))
    elif options.rx and options.tx:
        if options.private_key or options.peer_public_key:
            raise ConfigError(ENCRYPT_NEEDS_LINK)  # before any key file is read
        encrypt, below = None, LocalPorts(options.rx, options.tx, options.host)
    else:
        raise ConfigError("give a link (--link URL) or local ports (--rx PORT --tx PORT)")
    fragment, repair = Fragment(options.fragment, options.fragment_timeout), Repair(options.repair)
    return Pipeline(
        above=TunDevice(options.mtu),
        upper=Upper(Offload(options.offload, options.offload_flags), Compress(options.compress),
                    encrypt, Queue(options.queue, options.queue_rate, options.queue_limit)),
        lower=Lower(below, fragment, repair),
        capture=Capture(options.pcap, options.pcap_limit) if options.pcap else None,
        keepalive=options.keepalive is not None, peers=peers, peer_keys=peer_keys,
        links=links_of(options, plugins, fragment, repair))


def links_of(options: UpOptions, plugins: InstalledPlugins, fragment: Fragment,
             repair: Repair) -> Links | None:
    """The links after the first when --link repeats (each wrapped in the --via links and
    with its own fragment and repair layers), with the policy; each is probed every
    --keepalive seconds (default 1 s), and is down after --link-timeout (default 2.25 probe
    intervals) of silence."""
    if len(options.link) < 2:
        if options.clamp_mss:
            raise ConfigError("--clamp-mss needs several --link (a TCP connection over one "
                              "link takes its MSS from the tunnel's MTU)")
        return None
    others = tuple(Lower(LinkBelow(plugins.registry.create_link(url, options.via)), fragment,
                         repair) for url in options.link[1:])
    probe = options.keepalive or DEFAULT_PROBE_INTERVAL
    return Links(others, LinkPolicy(options.link_policy), options.hold_time, probe,
                 Thresholds.choose(probe, options.link_timeout), options.reorder_wait,
                 options.clamp_mss)


def encrypt_of(options: UpOptions | argparse.Namespace) -> Encrypt | None:
    """The encrypt layer the options ask for (keys read and checked now), or None."""
    if not (options.private_key or options.peer_public_key or options.preshared_key):
        if options.state_dir:
            raise ConfigError("--state-dir keeps handshake state: it needs encryption "
                              "(--private-key and --peer-public-key)")
        return None
    if not (options.private_key and options.peer_public_key):
        raise ConfigError("encryption needs both --private-key and --peer-public-key")
    keys = load_keys(options.private_key, options.peer_public_key, options.preshared_key,
                     allowed_ciphers(options.cipher))
    account = lookup_user(options.user) if options.state_dir and options.user else None
    return Encrypt(keys, Timers(options.rekey_interval, options.handshake_retry,
                                options.rekey_packets), options.state_dir,
                   (account.uid, account.gid) if account else None)


def peers_encrypt(options: UpOptions, peers: PeerTable
                  ) -> tuple[Encrypt | None, dict[str, StaticKeys]]:
    """A multipoint tunnel's encryption: with --private-key each peer's keys (its key=, the
    public key) and the layer every peer's stack copies; (None, {}) without."""
    if options.peer_public_key:
        raise ConfigError("with --peer, each peer's public key is its key=, not "
                          "--peer-public-key")
    keyless = [peer.name for peer in peers.peers if not peer.key]
    if not options.private_key:
        if len(keyless) < len(peers.peers):
            raise ConfigError("a peer's key= needs --private-key (this side's key)")
        return encrypt_of(options), {}  # refuses --preshared-key or --state-dir alone
    if keyless:
        raise ConfigError(f"peer {keyless[0]!r}: no key= (with --private-key every peer needs "
                          f"its public key)")
    publics = {peer.name: decode_key(str(peer.key), f"peer {peer.name!r}: key=")
               for peer in peers.peers}
    if len(set(publics.values())) < len(publics):
        raise ConfigError("two peers have the same key= (each peer is its own key)")
    template = encrypt_of(dataclasses.replace(options, peer_public_key=peers.peers[0].key))
    assert template is not None  # both keys given
    return template, {name: dataclasses.replace(template.keys, peer_public=public)
                      for name, public in publics.items()}


def config_checks(registry: LinkRegistry) -> dict[str, Check]:
    """Value checks for config keys, so that errors name the key path."""
    return {
        "link": lambda url: registry.link_options(parse_link_url(url)),
        "via": lambda url: registry.wrapper_options(parse_link_url(url)),
        "remote": parse_network,
        "peer": parse_peer,
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
            planned = plan_up(options, plugins)
            return open_tunnel(planned.spec, planned.pipeline, stack)

        jobs.append(TunnelJob(
            key=options.name or tunnel.label, open=opener, settings=vars(tunnel.args),
            hooks=options.hooks, keepalive=options.keepalive,
            thresholds=Thresholds.choose(options.keepalive, options.link_timeout),
            plan=functools.partial(replan, options, plugins)))
    return jobs


def replan(options: UpOptions, plugins: InstalledPlugins) -> Plan:
    """The tunnel's pipeline planned again (a reload's new peers)."""
    return plan_up(options, plugins).pipeline


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
        if any(options.hooks.commands.values()) or options.keepalive or options.link_timeout \
                or options.peer:
            raise ConfigError("hooks, --keepalive, --link-timeout and --peer need the tun "
                              "backend: the kernel runs a fou tunnel without linkbridge")
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
    encrypt = encrypt_of(args)
    # the external tunnel's MTU is unknown here: `auto` never splits, `always` splits to the link's
    plan = validate(Pipeline(
        above=LocalPorts(args.rx, args.tx, args.host),
        upper=Upper(compress=Compress(args.compress), encrypt=encrypt,
                    queue=Queue(args.queue, args.queue_rate, args.queue_limit)),
        lower=Lower(LinkBelow(plugins.registry.create_link(args.url, args.via)),
                    Fragment(args.fragment, args.fragment_timeout), Repair(args.repair)),
        capture=Capture(args.pcap, args.pcap_limit) if args.pcap else None))
    with shutdown_on_signals(), contextlib.ExitStack() as stack:
        serve(open_link(plan, stack), plugins.manager)


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
