"""The lab report: what the probes measured, the tunnels' counters, and the lines the link and
the layers add."""

from __future__ import annotations

from dataclasses import dataclass, field

from linkbridge.lab.probes import PingResult, TransferResult
from linkbridge.plugin.units import format_rate


@dataclass
class LabReport:
    link: str
    ping: PingResult
    transfer: TransferResult | None  # None: none was asked for (--bytes 0)
    stats_a: dict[str, int]  # tunnel A's device counters over the run (from the first ping)
    stats_b: dict[str, int]
    comparison: list[str] = field(default_factory=list)  # configured vs measured, layers

    def lines(self) -> list[str]:
        a, b = self.stats_a, self.stats_b
        return [
            f"linkbridge lab over {self.link}",
            f"  ping     {ping_text(self.ping)}",
            f"  tcp      {transfer_text(self.transfer) if self.transfer else 'no transfer'}",
            f"  A -> B   {a.get('tx_packets', 0)} packets / {a.get('tx_bytes', 0)} bytes sent, "
            f"{b.get('rx_packets', 0)} packets / {b.get('rx_bytes', 0)} bytes delivered",
            f"  B -> A   {b.get('tx_packets', 0)} packets / {b.get('tx_bytes', 0)} bytes sent, "
            f"{a.get('rx_packets', 0)} packets / {a.get('rx_bytes', 0)} bytes delivered",
            *self.comparison,
        ]


def ping_text(ping: PingResult) -> str:
    """Sent, received (late ones said apart: they are not lost), loss and RTTs."""
    rtts = ping.rtts_ms
    rtt = (f"{min(rtts):.3f}/{sum(rtts) / len(rtts):.3f}/{max(rtts):.3f} ms"
           if rtts else "n/a")
    late = f" ({ping.late} late: after the {ping.wait:.2f} s wait)" if ping.late else ""
    return (f"{ping.sent} sent, {ping.received} received{late}, {ping.loss_percent:.1f}% loss, "
            f"rtt min/avg/max {rtt}")


def transfer_text(t: TransferResult) -> str:
    """Bytes that arrived of those to send, in how long, and whether they are what was sent;
    a transfer cut short says so and why, never `0 bit/s` for what did arrive."""
    rate = f"{t.seconds:.2f} s = {format_rate(t.mbit_per_s * 1e6)}"
    content = "intact" if t.arrived_intact else "CORRUPTED"
    if t.complete:
        return f"{t.received_bytes} of {t.size} bytes in {rate}, content {content}"
    handed = f", {t.sent_bytes} handed to TCP" if t.sent_bytes != t.size else ""
    return (f"INCOMPLETE: {t.received_bytes} of {t.size} bytes arrived{handed} in {rate}, "
            f"{t.stopped}; what arrived is {content}")


def traffic_problem(ping_result: PingResult, transfer: TransferResult | None) -> str:
    """What the lab's exit status fails on, in a few words ("" when nothing)."""
    if ping_result.received == 0:
        return "no ping was answered"
    if transfer is None or transfer.ok:
        return ""
    if not transfer.arrived_intact:
        return "the TCP transfer's content arrived corrupted"
    return (f"the TCP transfer stopped after {transfer.received_bytes} of {transfer.size} bytes "
            f"({transfer.stopped}); on a slow or half-duplex link give a smaller --bytes, or "
            "--bytes 0 for pings alone")
