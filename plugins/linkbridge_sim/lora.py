"""LoRa time on air (Semtech's formula, SX1276 datasheet section 4.1.1.7). Pure logic."""

from __future__ import annotations

import math
from dataclasses import dataclass

LORA_MAX_PAYLOAD = 255  # a LoRa packet's payload length field is one byte
BANDWIDTHS = (7_800.0, 10_400.0, 15_600.0, 20_800.0, 31_250.0, 41_700.0, 62_500.0,
              125_000.0, 250_000.0, 500_000.0)
LDRO_SYMBOL_TIME = 0.016  # `ldro=auto` turns low-data-rate optimisation on above 16 ms symbols


@dataclass(frozen=True)
class LoraModulation:
    """A LoRa radio's settings: spreading factor 6..12, bandwidth (Hz), coding rate 4/(4+cr)
    with cr 1..4, preamble symbols, explicit header, payload CRC, low-data-rate optimisation
    (None: on when a symbol lasts more than 16 ms, as Semtech's tools do)."""

    sf: int = 9
    bandwidth: float = 125_000.0
    cr: int = 1
    preamble: int = 8
    explicit_header: bool = True
    crc: bool = True
    ldro: bool | None = None

    def __post_init__(self) -> None:
        if not 6 <= self.sf <= 12:
            raise ValueError(f"spreading factor {self.sf} is not 6..12")
        if not 1 <= self.cr <= 4:
            raise ValueError(f"coding rate 4/{self.cr + 4} is not 4/5..4/8")
        if self.bandwidth <= 0 or self.preamble < 0:
            raise ValueError("bandwidth must be > 0 and preamble >= 0")
        if self.sf == 6 and self.explicit_header:
            raise ValueError("SF6 needs the implicit header (header=implicit)")

    @property
    def symbol_time(self) -> float:
        return float(2 ** self.sf) / self.bandwidth

    @property
    def low_data_rate(self) -> bool:
        return self.symbol_time > LDRO_SYMBOL_TIME if self.ldro is None else self.ldro

    def payload_symbols(self, size: int) -> int:
        """Symbols after the preamble for a `size`-byte payload (header included if explicit)."""
        bits = 8 * size - 4 * self.sf + 28 + 16 * self.crc - 20 * (not self.explicit_header)
        per_block = 4 * (self.sf - 2 * self.low_data_rate)
        return 8 + max(math.ceil(bits / per_block) * (self.cr + 4), 0)

    def airtime(self, size: int) -> float:
        """Seconds on air of one packet with a `size`-byte payload (0..255)."""
        if not 0 <= size <= LORA_MAX_PAYLOAD:
            raise ValueError(f"a LoRa payload is 0..{LORA_MAX_PAYLOAD} bytes, not {size}")
        preamble = (self.preamble + 4.25) * self.symbol_time
        return preamble + self.payload_symbols(size) * self.symbol_time

    def describe(self) -> str:
        header = "explicit" if self.explicit_header else "implicit"
        return (f"LoRa SF{self.sf} {self.bandwidth / 1e3:g} kHz CR 4/{self.cr + 4} "
                f"preamble {self.preamble} {header} header crc {'on' if self.crc else 'off'} "
                f"ldro {'on' if self.low_data_rate else 'off'}")
