"""`linkbridge lab`: two hosts, a tunnel on each over the chosen link, ping, TCP, report."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from linkbridge.errors import LinkbridgeError
from linkbridge.lab.probes import PingResult, TransferResult, ping, tcp_transfer
from linkbridge.lab.processes import LinkbridgeProcess
from linkbridge.lab.topology import OVERLAY, TwoHosts, link_stats, two_hosts
from linkbridge.plugins import LinkRegistry, get_plugin_manager
from linkbridge.url import LinkUrl, parse_link_url

log = logging.getLogger("linkbridge")
TUN_NAME = "lbt0"


@dataclass(frozen=True)
class LabOptions:
    link: str = "udp"
    via: tuple[str, ...] = ()
    mtu: int | None = None
    count: int = 20
    interval: float = 0.05
    transfer_bytes: int = 20_000_000


@dataclass
class LabReport:
    link: str
    ping: PingResult
    transfer: TransferResult
    stats_a: dict[str, int]
    stats_b: dict[str, int]

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
            f"{t.mbit_per_s:.1f} Mbit/s, content {'intact' if t.intact else 'CORRUPTED'}",
            f"  A -> B   {a.get('tx_packets', 0)} packets / {a.get('tx_bytes', 0)} bytes sent, "
            f"{b.get('rx_packets', 0)} packets / {b.get('rx_bytes', 0)} bytes delivered",
            f"  B -> A   {b.get('tx_packets', 0)} packets / {b.get('tx_bytes', 0)} bytes sent, "
            f"{a.get('rx_packets', 0)} packets / {a.get('rx_bytes', 0)} bytes delivered",
        ]


def tunnel_args(url: LinkUrl, via: Sequence[str], mtu: int | None, local: str,
                remote: str) -> list[str]:
    args = ["up", "--name", TUN_NAME, "--link", str(url), "--remote", remote,
            "--address", local]
    for wrapper in via:
        args += ["--via", wrapper]
    if mtu:
        args += ["--mtu", str(mtu)]
    return args


@contextlib.contextmanager
def lab_tunnels(hosts: TwoHosts, link: str, via: Sequence[str] = (),
                mtu: int | None = None, extra_args: Sequence[str] = ()
                ) -> Iterator[tuple[LinkbridgeProcess, LinkbridgeProcess]]:
    """Run a linkbridge tunnel in each lab host over `link`; stop both on exit.

    `extra_args` go to both `linkbridge up` command lines (e.g. `--user nobody`).
    """
    url = parse_link_url(link)
    registry = LinkRegistry(get_plugin_manager())
    registry.link_options(url)  # fail on a bad option before any set-up
    for wrapper in via:
        registry.wrapper_options(parse_link_url(wrapper))
    with registry.link_class(url.scheme).lab_pair(url, hosts.sides) as (url_a, url_b), \
            LinkbridgeProcess(hosts.a, [*tunnel_args(url_a, via, mtu, OVERLAY[0], OVERLAY[1]),
                                        *extra_args], "tunnel A") as side_a, \
            LinkbridgeProcess(hosts.b, [*tunnel_args(url_b, via, mtu, OVERLAY[1], OVERLAY[0]),
                                        *extra_args], "tunnel B") as side_b:
        yield side_a, side_b


def run_lab(options: LabOptions) -> LabReport:
    """Build the lab, measure, print the report and tear everything down."""
    if os.geteuid() != 0:
        raise LinkbridgeError("the lab needs root (network namespaces, veth and TUN devices)")
    with two_hosts() as hosts:
        log.info("lab hosts %s and %s joined by veth", hosts.a, hosts.b)
        with lab_tunnels(hosts, options.link, options.via, options.mtu):
            log.info("tunnels up, pinging %s from %s", OVERLAY[1], hosts.a)
            ping_result = ping(hosts.a, OVERLAY[1], options.count, options.interval)
            log.info("TCP transfer of %d bytes A -> B", options.transfer_bytes)
            transfer = tcp_transfer(hosts.b, OVERLAY[1], hosts.a, options.transfer_bytes)
            report = LabReport(options.link, ping_result, transfer,
                               link_stats(hosts.a, TUN_NAME), link_stats(hosts.b, TUN_NAME))
    print("\n".join(report.lines()), flush=True)
    if ping_result.received == 0 or not transfer.intact:
        raise LinkbridgeError("the lab tunnel did not carry traffic correctly (see report)")
    return report
