"""`linkbridge lab`: two hosts, a tunnel on each over the chosen link, ping, TCP, report."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from linkbridge.errors import ConfigError, LinkbridgeError
from linkbridge.lab.compare import (
    Figures,
    comparison_lines,
    configured_figures,
    measured_lines,
    ping_packet_size,
    ping_spacing,
    ping_timeout,
    round_trip,
    transfer_note,
    transfer_size,
    transfer_stall,
)
from linkbridge.lab.layers import decompression_drops, layer_lines, queue_drops, tunnel_pair
from linkbridge.lab.links import LinkSchedule, await_links_up, link_urls, link_veth, status_path
from linkbridge.lab.options import LabOptions, SideArgs, key_args
from linkbridge.lab.plot import (
    DIRECTIONS,
    CounterSampler,
    LabSeries,
    series_json,
    svg,
    throughput,
)
from linkbridge.lab.probes import PingResult, TransferResult, ping, tcp_transfer
from linkbridge.lab.processes import LinkbridgeProcess, running_together
from linkbridge.lab.report import LabReport, traffic_problem
from linkbridge.lab.topology import (
    OVERLAY,
    OVERLAY6,
    OVERLAY6_PREFIX,
    TwoHosts,
    device_mtu,
    link_stats,
    set_sysctl,
    two_hosts,
)
from linkbridge.ops.logs import Progress
from linkbridge.plugin.lab import LabPairing
from linkbridge.plugin.link import Link
from linkbridge.plugin.registry import LinkRegistry
from linkbridge.plugin.url import LinkUrl, parse_link_url

log = logging.getLogger("linkbridge")
TUN_NAME = "lbt0"
SETTLE_INTERVAL = 0.3  # seconds between looks at the counters, and the least quiet time


def tunnel_args(url: LinkUrl, via: Sequence[str], mtu: int | None, local: str,
                remote: str, ipv6: tuple[str, str] | None = None) -> list[str]:
    """`linkbridge up` arguments for one side; `ipv6` adds its own and the peer's v6 address."""
    args = ["up", "--name", TUN_NAME, "--link", str(url), "--remote", remote,
            "--address", local]
    if ipv6 is not None:
        args += ["--address", f"{ipv6[0]}/{OVERLAY6_PREFIX}", "--remote", ipv6[1]]
    for wrapper in via:
        args += ["--via", wrapper]
    if mtu:
        args += ["--mtu", str(mtu)]
    return args


def checked_link(registry: LinkRegistry, link: str,
                 via: Sequence[str] = ()) -> tuple[LinkUrl, type[Link]]:
    """`link` parsed and its class, its options and the wrappers' checked (ConfigError for a
    bad one): what every lab does before it asks the class for a lab protocol."""
    url = parse_link_url(link)
    registry.link_options(url)
    for wrapper in via:
        registry.wrapper_options(parse_link_url(wrapper))
    return url, registry.link_class(url.scheme)


def lab_link(registry: LinkRegistry, link: str, via: Sequence[str]) -> LabPairing:
    """The class of `link`, checked (checked_link()); ConfigError for a link that cannot join
    the lab's hosts (one without `lab_pair`)."""
    url, link_class = checked_link(registry, link, via)
    if not isinstance(link_class, LabPairing):
        raise ConfigError(f"link {url.scheme!r} cannot be used by the lab: it cannot join "
                          f"the lab's two hosts by itself; links that can: "
                          f"{usable_links(registry, LabPairing)}")
    return link_class


def usable_links(registry: LinkRegistry, capability: type) -> str:
    """The installed links whose class implements `capability` (a lab protocol), listed."""
    return ", ".join(sorted(f"{scheme}:" for scheme, entry in registry.links.items()
                            if isinstance(entry.cls, capability)))


@contextlib.contextmanager
def lab_tunnels(hosts: TwoHosts, link: str, via: Sequence[str] = (),
                mtu: int | None = None, extra_args: Sequence[str] = (), ipv6: bool = False,
                *, registry: LinkRegistry, side_args: SideArgs = ((), ()), verbose: int = 0,
                staggered: bool = False, program: Sequence[str] = ()
                ) -> Iterator[tuple[LinkbridgeProcess, LinkbridgeProcess]]:
    """Run a linkbridge tunnel in each lab host over `link`; stop both on exit.

    `extra_args` go to both `linkbridge up` command lines (e.g. `--user nobody`), `side_args`
    to A's and B's own (e.g. each side's keys); with `staggered` B starts once A is ready,
    not at the same time; `ipv6` also
    gives the tunnels the OVERLAY6 addresses (the tunnel MTU must then be at least 1280);
    `registry` (the installed plugins') checks the URLs and finds the link class; with
    `verbose` (a count of -v) the tunnels run with it and what they print is logged;
    `program` runs linkbridge (LinkbridgeProcess: e.g. another commit's, to compare).
    """
    url = parse_link_url(link)
    with lab_link(registry, link, via).lab_pair(url, hosts.sides) as (url_a, url_b), \
            tunnels_between(hosts, url_a, url_b, via, mtu, extra_args, ipv6,
                            side_args=side_args, verbose=verbose, staggered=staggered,
                            program=program) as sides:
        yield sides


@contextlib.contextmanager
def more_links(hosts: TwoHosts, options: LabOptions, registry: LinkRegistry
               ) -> Iterator[tuple[tuple[list[str], list[str]], list[str]]]:
    """Each side's --link options for the links after the first (options.more_links), each
    over a veth pair of its own; and host A's veth end of every link, in --link order."""
    args: tuple[list[str], list[str]] = ([], [])
    veths = [hosts.veth_a]
    with contextlib.ExitStack() as stack:
        for number, link in enumerate(options.more_links, 2):
            veths.append(stack.enter_context(link_veth(hosts, number))[0])
            ends = stack.enter_context(link_urls(lab_link(registry, link, options.via),
                                                 parse_link_url(link), hosts, number))
            for side, end in zip(args, ends, strict=True):
                side += ["--link", str(end)]
        yield args, veths


@contextlib.contextmanager
def lab_run_tunnels(hosts: TwoHosts, options: LabOptions, registry: LinkRegistry,
                    extra_args: Sequence[str] = ()
                    ) -> Iterator[tuple[tuple[LinkbridgeProcess, LinkbridgeProcess], list[str]]]:
    """Both tunnels as `options` ask (over each of its links; with --encrypt, keys made for
    the run), with `extra_args` besides; the processes, and host A's veth end of each link."""
    with key_args(options.encrypt) as keys, \
            more_links(hosts, options, registry) as (link_args, veths), \
            lab_tunnels(hosts, options.link, options.via, options.mtu,
                        [*options.tunnel_args(), *extra_args], ipv6=options.ipv6,
                        registry=registry,
                        side_args=(list(keys[0]) + link_args[0], list(keys[1]) + link_args[1]),
                        verbose=options.verbose) as sides:
        yield sides, veths


@contextlib.contextmanager
def tunnels_between(hosts: TwoHosts, url_a: LinkUrl, url_b: LinkUrl, via: Sequence[str] = (),
                    mtu: int | None = None, extra_args: Sequence[str] = (), ipv6: bool = False,
                    *, side_args: SideArgs = ((), ()), verbose: int = 0,
                    staggered: bool = False, program: Sequence[str] = ()
                    ) -> Iterator[tuple[LinkbridgeProcess, LinkbridgeProcess]]:
    """Run `linkbridge up` in host A over `url_a` and in host B over `url_b` (the two ends of
    one link, made by the caller); stop both on exit. The rest as for lab_tunnels()."""
    v6_a, v6_b = (OVERLAY6, OVERLAY6[::-1]) if ipv6 else (None, None)
    args_a = [*tunnel_args(url_a, via, mtu, OVERLAY[0], OVERLAY[1], v6_a), *extra_args,
              *side_args[0]]
    args_b = [*tunnel_args(url_b, via, mtu, OVERLAY[1], OVERLAY[0], v6_b), *extra_args,
              *side_args[1]]
    side_a = LinkbridgeProcess(hosts.a, args_a, "tunnel A", verbose=verbose, program=program)
    side_b = LinkbridgeProcess(hosts.b, args_b, "tunnel B", verbose=verbose, program=program)
    with running_together(side_a, side_b, staggered=staggered):
        yield side_a, side_b


Stats = tuple[dict[str, int], dict[str, int]]  # tunnel A's and B's device counters


def device_stats(hosts: TwoHosts) -> Stats:
    return link_stats(hosts.a, TUN_NAME), link_stats(hosts.b, TUN_NAME)


def settled_stats(hosts: TwoHosts, since: Stats, quiet: float = SETTLE_INTERVAL) -> Stats:
    """Both tunnels' counters since `since` (the start of the run: what the kernels sent
    before both tunnels were up is no part of it), once packets still on the link have
    arrived: as soon as each direction delivered what it sent, else once they stayed the
    same for `quiet` seconds (at least a round trip: a packet in flight is not lost), or
    after 10 times that at most."""
    stats = counted_since(since, device_stats(hosts))
    changed = time.monotonic()
    deadline = changed + 10 * quiet
    while not delivered_all(stats) and time.monotonic() < deadline:
        time.sleep(SETTLE_INTERVAL)
        latest = counted_since(since, device_stats(hosts))
        if latest != stats:
            stats, changed = latest, time.monotonic()
        elif time.monotonic() - changed >= quiet:
            break
    return stats


def counted_since(before: Stats, after: Stats) -> Stats:
    a, b = ({key: value - old.get(key, 0) for key, value in new.items()}
            for old, new in zip(before, after, strict=True))
    return a, b


def delivered_all(stats: Stats) -> bool:
    """Whether each tunnel device received (at least) the packets the other one sent."""
    a, b = stats
    return (b.get("rx_packets", 0) >= a.get("tx_packets", 0)
            and a.get("rx_packets", 0) >= b.get("tx_packets", 0))


def delivered_bytes(hosts: TwoHosts) -> tuple[int, int]:
    """IP bytes the tunnel devices have delivered: into B (A -> B), into A (B -> A)."""
    return (link_stats(hosts.b, TUN_NAME).get("rx_bytes", 0),
            link_stats(hosts.a, TUN_NAME).get("rx_bytes", 0))


def lab_series(ping_result: PingResult, samples: list[tuple[float, int, int]], start: float,
               figures: Figures | None, ping_bytes: int) -> LabSeries:
    """The run's series for the plot, with the configured figures as reference lines."""
    series = LabSeries(rtt_ms=[(sent - start, rtt) for sent, rtt in ping_result.timeline],
                       throughput_bps=throughput(samples), samples=len(samples))
    if figures is not None:
        ab, ba = figures
        series.configured_rtt_ms = 1000 * (ab.latency(ping_bytes) + ba.latency(ping_bytes))
        series.configured_rate_bps = {d: f.rate for d, f in zip(DIRECTIONS, figures, strict=True)
                                      if f.rate}
    return series


def write_plots(options: LabOptions, series: LabSeries, label: str) -> None:
    """Write --plot (SVG) and --plot-data (JSON); an unwritable path is a one-line error."""
    outputs = ((options.plot, svg(series, f"linkbridge lab over {label}")),
               (options.plot_data, json.dumps(series_json(series), indent=1)))
    for path, text in outputs:
        if path is None:
            continue
        try:
            with open(path, "w", encoding="utf-8") as file:
                file.write(text)
        except OSError as exc:
            raise LinkbridgeError(f"cannot write {path}: {exc.strerror or exc}") from None
        log.info("wrote %s", path)


@dataclass(frozen=True)
class Plan:
    """What a lab run will do, worked out from its options and the link's figures before
    anything is set up."""

    options: LabOptions
    figures: Figures | None
    peer: str  # the address pinged, and the TCP transfer's server
    transfer_bytes: int

    @property
    def ping_bytes(self) -> int:
        return ping_packet_size(self.peer)

    @property
    def label(self) -> str:
        return (" via ".join((" + ".join((self.options.link, *self.options.more_links)),
                              *self.options.via))
                + (" (IPv6)" if self.options.ipv6 else ""))


def plan_run(options: LabOptions, registry: LinkRegistry) -> Plan:
    """The run's plan; LinkbridgeError (ConfigError for bad options and links the lab cannot
    use) before anything is made."""
    if os.geteuid() != 0:
        raise LinkbridgeError("the lab needs root (network namespaces, veth and TUN devices)")
    for path in (options.plot, options.plot_data):
        if path and not os.access(os.path.dirname(os.path.abspath(path)), os.W_OK):
            raise ConfigError(f"cannot write {path}: its directory is missing or not writable")
    options.check()
    for link in (options.link, *options.more_links):
        lab_link(registry, link, options.via)
    figures = configured_figures(registry, options.link, options.via)
    return Plan(options, figures, OVERLAY6[1] if options.ipv6 else OVERLAY[1],
                transfer_size(figures, options.transfer_bytes))


def prepare_hosts(hosts: TwoHosts, options: LabOptions) -> list[str]:
    """Set the lab's hosts up before the tunnels exist: their kernels send no IPv6 router
    solicitations (the tunnels would carry them at random times, costing a slow link's
    airtime and counted as sent by a side whose peer was not up yet), and TCP timestamps are
    off for VJ. The report's notes on what the user asked for changed."""
    for host in (hosts.a, hosts.b):
        set_sysctl(host, "net/ipv6/conf/default/router_solicitations", "0")
    if not options.vj_timestamps_off:
        return []
    for host in (hosts.a, hosts.b):
        set_sysctl(host, "net/ipv4/tcp_timestamps", "0")
    note = ("TCP timestamps turned off in both lab hosts for --compress vj (VJ compresses only "
            "TCP without options)" + ("; IPv6 crosses uncompressed (VJ is IPv4 only)"
                                      if options.ipv6 else ""))
    log.info(note)
    return [f"  note     {note}"]


def transfer_probe(hosts: TwoHosts, plan: Plan) -> TransferResult | None:
    """The TCP transfer A -> B the plan asks for (None for none: --bytes 0)."""
    size = plan.transfer_bytes
    if not size:
        log.info("no TCP transfer (--bytes 0)")
        return None
    note = transfer_note(plan.figures, size, plan.options.transfer_bytes)
    log.info("TCP transfer of %d bytes A -> B%s", size, f" ({note})" if note else "")
    progress = Progress("TCP transfer", size, unit="bytes")
    transfer = tcp_transfer(hosts.b, plan.peer, hosts.a, size,
                            timeout=transfer_stall(plan.figures, plan.ping_bytes),
                            on_progress=progress.update, limit=plan.options.transfer_time)
    progress.finish()
    return transfer


def run_lab(options: LabOptions, registry: LinkRegistry) -> LabReport:
    """Build the lab over links from `registry`, measure, print the report and tear
    everything down. Bad options and links the lab cannot use fail before anything is made."""
    plan = plan_run(options, registry)
    with two_hosts() as hosts:
        log.info("lab hosts %s and %s joined by veth", hosts.a, hosts.b)
        notes = prepare_hosts(hosts, options)
        with lab_run_tunnels(hosts, options, registry) as (sides, veths):
            if options.more_links:
                await_links_up([(f"tunnel {side}", process.proc.pid if process.proc else 0)
                                for side, process in zip("AB", sides, strict=True)],
                               TUN_NAME)
            log.info("tunnels up, pinging %s from %s", plan.peer, hosts.a)
            initial = device_stats(hosts)
            start = time.perf_counter()
            schedule = LinkSchedule(options.link_events(), hosts.a, veths,
                                    status_path(sides[0].proc.pid if sides[0].proc else 0,
                                                TUN_NAME))
            wait = schedule.ping_wait(ping_timeout(plan.figures, plan.ping_bytes))
            with (CounterSampler(lambda: delivered_bytes(hosts), start)
                  if options.plot or options.plot_data else contextlib.nullcontext()) as sampler, \
                    schedule.running(start):
                ping_result = ping(hosts.a, plan.peer, options.count, options.interval,
                                   timeout=wait, linger=wait,
                                   spacing=ping_spacing(plan.figures, plan.ping_bytes))
                before = counted_since(initial, device_stats(hosts))
                transfer = transfer_probe(hosts, plan)
            report = LabReport(plan.label, ping_result, transfer,
                               *settled_stats(hosts, initial, settle_time(hosts, plan)))
            pair = tunnel_pair([side.proc.pid if side.proc else 0 for side in sides])
            if plan.figures is not None:
                report.comparison = comparison_lines(
                    plan.figures, ping_result, plan.ping_bytes, transfer, before,
                    (report.stats_a, report.stats_b),
                    (decompression_drops(pair[1].link_side),
                     decompression_drops(pair[0].link_side)) if pair else ({}, {}),
                    (queue_drops(pair[0].link_side),
                     queue_drops(pair[1].link_side)) if pair else ({}, {}))
            report.comparison += measured_lines(registry, options.link, hosts.sides)
            report.comparison += (layer_lines(pair) if pair else []) + notes
            report.comparison += schedule.lines(ping_result)
    print("\n".join(report.lines()), flush=True)
    if sampler is not None:
        write_plots(options, lab_series(ping_result, sampler.samples, start, plan.figures,
                                        plan.ping_bytes), plan.label)
    problem = traffic_problem(ping_result, transfer)
    if problem:
        raise LinkbridgeError(f"the lab tunnel did not carry traffic correctly: {problem}")
    return report



def settle_time(hosts: TwoHosts, plan: Plan) -> float:
    """How long the counters must stay the same before what is missing counts as lost: a
    round trip of full-sized packets (one in flight may wait behind one each way: a radio's
    airtime), at least SETTLE_INTERVAL."""
    full = device_mtu(hosts.a, TUN_NAME) or plan.ping_bytes
    return max(SETTLE_INTERVAL, round_trip(plan.figures, full) or 0.0)
