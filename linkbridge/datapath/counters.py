"""Per-endpoint traffic counters: packets and bytes per direction, drops by reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Counters:
    """Traffic through one endpoint; `rx` is what it received, `tx` what it sent."""

    rx_packets: int = 0
    rx_bytes: int = 0
    tx_packets: int = 0
    tx_bytes: int = 0
    drops: Counter[str] = field(default_factory=Counter)
    # UDP offload actually used: segmented sends (GSO) and coalesced reads (GRO), as system
    # calls and as the packets they carried
    offload: Counter[str] = field(default_factory=Counter)

    def received(self, size: int) -> None:
        self.rx_packets += 1
        self.rx_bytes += size

    def sent(self, size: int) -> None:
        self.tx_packets += 1
        self.tx_bytes += size

    def drop(self, reason: str, count: int = 1) -> None:
        self.drops[reason] += count

    def segmented_send(self, packets: int) -> None:
        """One send carried `packets` datagrams (UDP GSO)."""
        self.offload["gso_sends"] += 1
        self.offload["gso_packets"] += packets

    def coalesced_read(self, packets: int) -> None:
        """One read returned `packets` datagrams coalesced by UDP GRO (counted when > 1)."""
        if packets > 1:
            self.offload["gro_reads"] += 1
            self.offload["gro_packets"] += packets

    def as_dict(self) -> dict[str, object]:
        return {
            "rx_packets": self.rx_packets,
            "rx_bytes": self.rx_bytes,
            "tx_packets": self.tx_packets,
            "tx_bytes": self.tx_bytes,
            "drops": dict(sorted(self.drops.items())),
            **({"offload": dict(sorted(self.offload.items()))} if self.offload else {}),
        }
