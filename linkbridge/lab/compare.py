"""Configured vs measured, for links that say what they are configured to do (e.g. `sim:`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from linkbridge.lab.probes import PingResult, TransferResult
from linkbridge.ops.status_format import drops_text
from linkbridge.plugin.lab import LabDirection, LabFigures, LabMeasuring, LabSides
from linkbridge.plugin.registry import LinkRegistry
from linkbridge.plugin.units import format_rate
from linkbridge.plugin.url import LinkUrl, parse_link_url

Figures = tuple[LabDirection, LabDirection]
SLOW_LINK_SECONDS = 4.0  # on a rate-limited link the default TCP transfer is about this long
DEFAULT_TRANSFER = 20_000_000  # bytes, on a link of unknown or high rate
MIN_TRANSFER = 2000
PING_PAYLOAD = 56
PING_TIMEOUT = 1.0  # seconds the lab waits for an echo reply on a link of unknown figures
MIN_PING_TIMEOUT = 0.25
TRANSFER_STALL = 60.0  # seconds without progress that end the TCP transfer, at least

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
                        airtime=slowest.airtime if slowest else None,
                        half_duplex=a.half_duplex or b.half_duplex)


def transfer_size(figures: Figures | None, requested: int | None) -> int:
    """The TCP transfer's bytes: as requested, else DEFAULT_TRANSFER, or only a few seconds'
    worth on a link that says it is slow."""
    if requested is not None:
        return requested
    rate = figures[0].rate if figures else None
    if not rate:
        return DEFAULT_TRANSFER
    return min(DEFAULT_TRANSFER, max(MIN_TRANSFER, int(rate / 8 * SLOW_LINK_SECONDS)))


def transfer_note(figures: Figures | None, size: int, requested: int | None) -> str:
    """What the log says of the transfer's size: how long the link's rate makes it, and
    whether the lab chose the size."""
    rate = figures[0].rate if figures else None
    if not rate:
        return ""
    note = f"about {size * 8 / rate:.3g} s at the link's {format_rate(rate)}"
    return note + ("" if requested is not None else ", sized to the link (--bytes to choose)")


def round_trip(figures: Figures | None, size: int) -> float | None:
    """Seconds a `size`-byte ping and its reply take by the link's figures (None: unknown)."""
    if figures is None:
        return None
    return figures[0].latency(size) + figures[1].latency(size)


def ping_timeout(figures: Figures | None, size: int) -> float:
    """How long the lab waits for each echo reply: PING_TIMEOUT where the link says nothing,
    else 3 times the round trip its figures give plus 0.2 s, at least 0.25 s: the losses of a
    fast lossy link do not each cost a second, and a slow link gets as long as it needs."""
    rtt = round_trip(figures, size)
    return PING_TIMEOUT if rtt is None else max(MIN_PING_TIMEOUT, 3 * rtt + 0.2)


def ping_spacing(figures: Figures | None, size: int) -> float:
    """The least time between two pings' sends: a round trip where the link is half duplex
    (the next request would meet the reply on the air), else none."""
    if figures is None or not any(d.half_duplex for d in figures):
        return 0.0
    return round_trip(figures, size) or 0.0


def transfer_stall(figures: Figures | None, size: int) -> float:
    """Seconds without progress that end the TCP transfer: TRANSFER_STALL, or more on a link
    whose round trip is long (TCP's retransmissions back off from a multiple of it)."""
    return max(TRANSFER_STALL, 20 * (round_trip(figures, size) or 0.0))


def ping_packet_size(destination: str) -> int:
    """IP bytes of one lab echo request (IPv4 or IPv6 header + ICMP header + payload)."""
    return PING_PAYLOAD + (48 if ":" in destination else 28)


def comparison_lines(figures: Figures, ping: PingResult, ping_bytes: int,
                     transfer: TransferResult | None, before: Sequence[Mapping[str, int]],
                     after: Sequence[Mapping[str, int]],
                     decompression: Sequence[Mapping[str, int]] = ({}, {}),
                     queued: Sequence[Mapping[str, int]] = ({}, {})) -> list[str]:
    """Report lines putting each configured figure beside the lab's measurement of it.

    Loss is measured from the tunnel devices' packet counters over the whole run, less the
    packets that crossed the link but that the receiver's decompressor dropped
    (`decompression`: B's drops by reason, then A's) and those the sender's queues dropped
    before the link, full or by the link-aware queue's rules (`queued`: A's, then B's); RTT
    by the ping; the A -> B rate from the IP bytes B's tunnel received during the TCP
    transfer.
    """
    ab, ba = figures
    lines = [_row("link", "configured", "measured", "")]
    for label, direction, sender, receiver, dropped, full in (
            ("A -> B", ab, after[0], after[1], decompression[0], queued[0]),
            ("B -> A", ba, after[1], after[0], decompression[1], queued[1])):
        sent, got = sender.get("tx_packets", 0), receiver.get("rx_packets", 0)
        tossed, overflowed = sum(dropped.values()), sum(full.values())
        lost = max(sent - got - tossed - overflowed, 0)
        measured = f"{100 * lost / sent:.2f}%" if sent else "n/a"
        note = f"{lost} of {sent} packets" + (
            f", {got - sent} more delivered than sent (duplicates)" if got > sent else "")
        if overflowed:
            full_text = drops_text(dict(sorted(full.items())))
            note += f"; {overflowed} more dropped by the sender's queues ({full_text})"
        if tossed:
            tossed_text = drops_text(dict(sorted(dropped.items())))
            note += f"; {tossed} more crossed but dropped by decompression ({tossed_text})"
        lines.append(_row(f"loss {label}", f"{100 * direction.loss:.2f}%", measured, note))
    rtt = 1000 * (ab.latency(ping_bytes) + ba.latency(ping_bytes))
    rtts = ping.rtts_ms
    lines.append(_row("rtt", f"{rtt:.2f} ms", f"{sum(rtts) / len(rtts):.2f} ms" if rtts else "n/a",
                      f"mean of the pings: {ping_bytes}-byte packets, delay and serialisation "
                      "both ways"))
    if ab.rate and transfer is not None:
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
