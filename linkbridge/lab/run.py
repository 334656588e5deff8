"""`linkbridge lab`: two hosts, a tunnel on each over the chosen link, ping, TCP, report."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from linkbridge.errors import ConfigError, LinkbridgeError
from linkbridge.lab.compare import (
    Figures,
    comparison_lines,
    configured_figures,
    measured_lines,
    ping_packet_size,
    ping_timeout,
    transfer_size,
)
from linkbridge.lab.compression import compression_lines
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
from linkbridge.lab.topology import (
    OVERLAY,
    OVERLAY6,
    OVERLAY6_PREFIX,
    TwoHosts,
    link_stats,
    two_hosts,
)
from linkbridge.ops.logs import Progress
from linkbridge.plugin.lab import LabPairing
from linkbridge.plugin.registry import LinkRegistry
from linkbridge.plugin.units import format_rate
from linkbridge.plugin.url import LinkUrl, parse_link_url

log = logging.getLogger("linkbridge")
TUN_NAME = "lbt0"
SETTLE_INTERVAL = 0.3  # seconds without a counter change that mean the link is idle


@dataclass(frozen=True)
class LabOptions:
    link: str = "udp"
    via: tuple[str, ...] = ()
    mtu: int | None = None
    count: int = 20
    interval: float = 0.05
    transfer_bytes: int = 20_000_000
    ipv6: bool = False
    plot: str | None = None  # SVG file: RTT and throughput over time
    plot_data: str | None = None  # JSON file: the same series
    compress: str = "off"  # --compress of both tunnels
    verbose: int = 0  # -v count: the tunnels run with it and their lines are logged


@dataclass
class LabReport:
    link: str
    ping: PingResult
    transfer: TransferResult
    stats_a: dict[str, int]
    stats_b: dict[str, int]
    comparison: list[str] = field(default_factory=list)  # configured vs measured, if known

    def lines(self) -> list[str]:
        rtts = self.ping.rtts_ms
        rtt = (f"{min(rtts):.3f}/{sum(rtts) / len(rtts):.3f}/{max(rtts):.3f} ms"
               if rtts else "n/a")
        t = self.transfer
        a, b = self.stats_a, self.stats_b
        return [
            f"linkbridge lab over {self.link}",
            f"  ping     {self.ping.sent} sent, {self.ping.received} received, "
            f"{self.ping.loss_percent:.1f}% loss, rtt min/avg/max {rtt}",
            f"  tcp      {t.received_bytes} of {t.sent_bytes} bytes in {t.seconds:.2f} s = "
            f"{format_rate(t.mbit_per_s * 1e6)}, content {'intact' if t.intact else 'CORRUPTED'}",
            f"  A -> B   {a.get('tx_packets', 0)} packets / {a.get('tx_bytes', 0)} bytes sent, "
            f"{b.get('rx_packets', 0)} packets / {b.get('rx_bytes', 0)} bytes delivered",
            f"  B -> A   {b.get('tx_packets', 0)} packets / {b.get('tx_bytes', 0)} bytes sent, "
            f"{a.get('rx_packets', 0)} packets / {a.get('rx_bytes', 0)} bytes delivered",
            *self.comparison,
        ]


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


SideArgs = tuple[Sequence[str], Sequence[str]]  # options of side A's and side B's own


@contextlib.contextmanager
def lab_tunnels(hosts: TwoHosts, link: str, via: Sequence[str] = (),
                mtu: int | None = None, extra_args: Sequence[str] = (), ipv6: bool = False,
                *, registry: LinkRegistry, side_args: SideArgs = ((), ()), verbose: int = 0
                ) -> Iterator[tuple[LinkbridgeProcess, LinkbridgeProcess]]:
    """Run a linkbridge tunnel in each lab host over `link`; stop both on exit.

    `extra_args` go to both `linkbridge up` command lines (e.g. `--user nobody`), `side_args`
    to A's and B's own (e.g. each side's keys); `ipv6` also
    gives the tunnels the OVERLAY6 addresses (the tunnel MTU must then be at least 1280);
    `registry` (the installed plugins') checks the URLs and finds the link class; with
    `verbose` (a count of -v) the tunnels run with it and what they print is logged.
    """
    url = parse_link_url(link)
    registry.link_options(url)  # fail on a bad option before any set-up
    for wrapper in via:
        registry.wrapper_options(parse_link_url(wrapper))
    link_class = registry.link_class(url.scheme)
    if not isinstance(link_class, LabPairing):
        raise ConfigError(f"link {url.scheme!r} cannot be used by the lab")
    with link_class.lab_pair(url, hosts.sides) as (url_a, url_b), \
            tunnels_between(hosts, url_a, url_b, via, mtu, extra_args, ipv6,
                            side_args=side_args, verbose=verbose) as sides:
        yield sides


@contextlib.contextmanager
def tunnels_between(hosts: TwoHosts, url_a: LinkUrl, url_b: LinkUrl, via: Sequence[str] = (),
                    mtu: int | None = None, extra_args: Sequence[str] = (), ipv6: bool = False,
                    *, side_args: SideArgs = ((), ()), verbose: int = 0
                    ) -> Iterator[tuple[LinkbridgeProcess, LinkbridgeProcess]]:
    """Run `linkbridge up` in host A over `url_a` and in host B over `url_b` (the two ends of
    one link, made by the caller); stop both on exit. The rest as for lab_tunnels()."""
    v6_a, v6_b = (OVERLAY6, OVERLAY6[::-1]) if ipv6 else (None, None)
    args_a = [*tunnel_args(url_a, via, mtu, OVERLAY[0], OVERLAY[1], v6_a), *extra_args,
              *side_args[0]]
    args_b = [*tunnel_args(url_b, via, mtu, OVERLAY[1], OVERLAY[0], v6_b), *extra_args,
              *side_args[1]]
    side_a = LinkbridgeProcess(hosts.a, args_a, "tunnel A", verbose=verbose)
    side_b = LinkbridgeProcess(hosts.b, args_b, "tunnel B", verbose=verbose)
    with running_together(side_a, side_b):
        yield side_a, side_b


def settled_stats(hosts: TwoHosts, limit: float = 3.0) -> tuple[dict[str, int], dict[str, int]]:
    """Both tunnels' counters once packets still on the link (a slow one) have arrived."""
    stats = link_stats(hosts.a, TUN_NAME), link_stats(hosts.b, TUN_NAME)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        time.sleep(SETTLE_INTERVAL)
        latest = link_stats(hosts.a, TUN_NAME), link_stats(hosts.b, TUN_NAME)
        if latest == stats:
            break
        stats = latest
    return stats


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


def run_lab(options: LabOptions, registry: LinkRegistry) -> LabReport:
    """Build the lab over links from `registry`, measure, print the report and tear
    everything down."""
    if os.geteuid() != 0:
        raise LinkbridgeError("the lab needs root (network namespaces, veth and TUN devices)")
    for path in (options.plot, options.plot_data):
        if path and not os.access(os.path.dirname(os.path.abspath(path)), os.W_OK):
            raise ConfigError(f"cannot write {path}: its directory is missing or not writable")
    figures = configured_figures(registry, options.link, options.via)
    transfer_bytes = transfer_size(figures, options.transfer_bytes)
    with two_hosts() as hosts:
        log.info("lab hosts %s and %s joined by veth", hosts.a, hosts.b)
        peer = OVERLAY6[1] if options.ipv6 else OVERLAY[1]
        compress = ("--compress", options.compress) if options.compress != "off" else ()
        with lab_tunnels(hosts, options.link, options.via, options.mtu, compress,
                         ipv6=options.ipv6, registry=registry,
                         verbose=options.verbose) as sides:
            log.info("tunnels up, pinging %s from %s", peer, hosts.a)
            start = time.perf_counter()
            plotting = options.plot or options.plot_data
            with (CounterSampler(lambda: delivered_bytes(hosts), start) if plotting
                  else contextlib.nullcontext()) as sampler:
                ping_result = ping(hosts.a, peer, options.count, options.interval,
                                   timeout=ping_timeout(figures, ping_packet_size(peer)))
                log.info("TCP transfer of %d bytes A -> B", transfer_bytes)
                before = link_stats(hosts.a, TUN_NAME), link_stats(hosts.b, TUN_NAME)
                progress = Progress("TCP transfer", transfer_bytes, unit="bytes")
                transfer = tcp_transfer(hosts.b, peer, hosts.a, transfer_bytes,
                                        on_progress=progress.update)
                progress.finish()
            label = " via ".join((options.link, *options.via)) + (" (IPv6)" if options.ipv6 else "")
            report = LabReport(label, ping_result, transfer, *settled_stats(hosts))
            if figures is not None:
                report.comparison = comparison_lines(
                    figures, ping_result, ping_packet_size(peer), transfer, before,
                    (report.stats_a, report.stats_b))
            report.comparison += measured_lines(registry, options.link, hosts.sides)
            report.comparison += compression_lines([side.proc.pid if side.proc else 0
                                                    for side in sides])
    print("\n".join(report.lines()), flush=True)
    if sampler is not None:
        write_plots(options, lab_series(ping_result, sampler.samples, start, figures,
                                        ping_packet_size(peer)), label)
    if ping_result.received == 0 or not transfer.intact:
        raise LinkbridgeError("the lab tunnel did not carry traffic correctly (see report)")
    return report
