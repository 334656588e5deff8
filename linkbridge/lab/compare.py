"""Configured vs measured, for links that say what they are configured to do (e.g. `sim:`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from linkbridge.lab.probes import PingResult, TransferResult
from linkbridge.plugin.lab import LabDirection, LabFigures, LabMeasuring, LabSides
from linkbridge.plugin.registry import LinkRegistry
from linkbridge.plugin.units import format_rate
from linkbridge.plugin.url import LinkUrl, parse_link_url

Figures = tuple[LabDirection, LabDirection]
SLOW_LINK_SECONDS = 4.0  # on a rate-limited link the TCP transfer is sized to about this long
MIN_TRANSFER = 2000
PING_PAYLOAD = 56
PING_TIMEOUT = 1.0  # seconds the lab waits for an echo reply on a link of unknown figures
MIN_PING_TIMEOUT = 0.25


def configured_figures(registry: LinkRegistry, link: str, via: Sequence[str]) -> Figures | None:
    """What the link and its wrappers are configured to do to A -> B and B -> A, if they say."""
    url = parse_link_url(link)
    figures = _configured(registry.link_class(url.scheme), url)
    for text in via:
        wrapper = parse_link_url(text)
        figures = _stack(figures, _configured(registry.wrapper_class(wrapper.scheme), wrapper))
    return figures


def _configured(link_class: object, url: LinkUrl) -> Figures | None:
    return link_class.lab_configured(url) if isinstance(link_class, LabFigures) else None


def _stack(outer: Figures | None, inner: Figures | None) -> Figures | None:
    if outer is None or inner is None:
        return outer or inner
    return _chain(outer[0], inner[0]), _chain(outer[1], inner[1])


def _chain(a: LabDirection, b: LabDirection) -> LabDirection:
    rates = [d for d in (a, b) if d.rate]
    slowest = min(rates, key=lambda d: d.rate or 0.0) if rates else None
    return LabDirection(loss=1 - (1 - a.loss) * (1 - b.loss), delay=a.delay + b.delay,
                        rate=slowest.rate if slowest else None,
                        overhead=slowest.overhead if slowest else 0,
                        airtime=slowest.airtime if slowest else None)


def transfer_size(figures: Figures | None, requested: int) -> int:
    """The TCP transfer size: as requested, but only a few seconds' worth on a slow link."""
    rate = figures[0].rate if figures else None
    if not rate:
        return requested
    return min(requested, max(MIN_TRANSFER, int(rate / 8 * SLOW_LINK_SECONDS)))


def ping_timeout(figures: Figures | None, size: int) -> float:
    """How long the lab waits for each echo reply: PING_TIMEOUT, or less where the link says
    what its round trip costs (3x that plus 0.2 s, at least 0.25 s), so that the losses of a
    lossy link do not each cost a whole second."""
    if figures is None:
        return PING_TIMEOUT
    rtt = figures[0].latency(size) + figures[1].latency(size)
    return min(PING_TIMEOUT, max(MIN_PING_TIMEOUT, 3 * rtt + 0.2))


def ping_packet_size(destination: str) -> int:
    """IP bytes of one lab echo request (IPv4 or IPv6 header + ICMP header + payload)."""
    return PING_PAYLOAD + (48 if ":" in destination else 28)


def comparison_lines(figures: Figures, ping: PingResult, ping_bytes: int,
                     transfer: TransferResult, before: Sequence[Mapping[str, int]],
                     after: Sequence[Mapping[str, int]]) -> list[str]:
    """Report lines putting each configured figure beside the lab's measurement of it.

    Loss is measured from the tunnel devices' packet counters over the whole run, RTT by the
    ping, the A -> B rate from the IP bytes B's tunnel received during the TCP transfer.
    """
    ab, ba = figures
    lines = [_row("link", "configured", "measured", "")]
    for label, direction, sender, receiver in (("A -> B", ab, after[0], after[1]),
                                               ("B -> A", ba, after[1], after[0])):
        sent, got = sender.get("tx_packets", 0), receiver.get("rx_packets", 0)
        lost = max(sent - got, 0)
        measured = f"{100 * lost / sent:.2f}%" if sent else "n/a"
        note = f"{lost} of {sent} packets" + (
            f", {got - sent} more delivered than sent (duplicates)" if got > sent else "")
        lines.append(_row(f"loss {label}", f"{100 * direction.loss:.2f}%", measured, note))
    rtt = 1000 * (ab.latency(ping_bytes) + ba.latency(ping_bytes))
    rtts = ping.rtts_ms
    lines.append(_row("rtt", f"{rtt:.2f} ms", f"{sum(rtts) / len(rtts):.2f} ms" if rtts else "n/a",
                      f"mean of the pings: {ping_bytes}-byte packets, delay and serialisation "
                      "both ways"))
    if ab.rate:
        wire = after[1].get("rx_bytes", 0) - before[1].get("rx_bytes", 0)
        rate = wire * 8 / transfer.seconds if transfer.seconds else 0.0
        lines.append(_row("rate A -> B", format_rate(ab.rate), format_rate(rate),
                          f"IP bytes into B during the {transfer.seconds:.1f} s TCP transfer"))
    return lines


def measured_lines(registry: LinkRegistry, link: str, sides: LabSides) -> list[str]:
    """Rows a link that measures itself (`LabMeasuring`) adds to the report."""
    url = parse_link_url(link)
    link_class = registry.link_class(url.scheme)
    if not isinstance(link_class, LabMeasuring):
        return []
    return [_row(*row) for row in link_class.lab_measured(url, sides)]


def _row(label: str, configured: str, measured: str, note: str) -> str:
    return f"  {label:13}{configured:>14}  {measured:>14}" + (f"   {note}" if note else "")
