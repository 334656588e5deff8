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

    def received(self, size: int) -> None:
        self.rx_packets += 1
        self.rx_bytes += size

    def sent(self, size: int) -> None:
        self.tx_packets += 1
        self.tx_bytes += size

    def drop(self, reason: str, count: int = 1) -> None:
        self.drops[reason] += count

    def as_dict(self) -> dict[str, object]:
        return {
            "rx_packets": self.rx_packets,
            "rx_bytes": self.rx_bytes,
            "tx_packets": self.tx_packets,
            "tx_bytes": self.tx_bytes,
            "drops": dict(sorted(self.drops.items())),
        }
