"""Who hears whom on the simulated radio channel, how well, and what survives an overlap.
Pure logic.

The channel asks a `Reception` three things about an ordered pair of stations (sender,
receiver): whether the receiver hears the sender at all (its carrier, and its frames), the
share of the sender's frames the receiver loses on the way (noise, fading), and the sender's
level at the receiver in dB (for the capture effect). Unless a pair is given its own values,
every station hears every other, a receiver loses its own `rxloss` of every sender's frames,
and a sender is heard at its own `level`. A topology (the hidden stations of a multipoint
network) gives pairs their values; the channel needs nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pair:
    """One direction between two stations; None: the stations' own settings decide."""

    heard: bool = True
    loss: float | None = None
    level: float | None = None  # dB at the receiver

    def __post_init__(self) -> None:
        if self.loss is not None and not 0.0 <= self.loss <= 1.0:
            raise ValueError("a pair's loss must be 0..100%")


@dataclass(frozen=True)
class Reception:
    """The pairs' values over the stations' defaults (see the module docstring)."""

    pairs: Mapping[tuple[str, str], Pair] = field(default_factory=dict)

    def pair(self, sender: str, receiver: str) -> Pair:
        return self.pairs.get((sender, receiver), Pair())

    def hears(self, sender: str, receiver: str) -> bool:
        return self.pair(sender, receiver).heard

    def loss(self, sender: str, receiver: str, rxloss: float) -> float:
        given = self.pair(sender, receiver).loss
        return rxloss if given is None else given

    def level(self, sender: str, receiver: str, own: float) -> float:
        given = self.pair(sender, receiver).level
        return own if given is None else given


def survives(wanted: float, interferers: list[float], capture: float | None) -> bool:
    """Whether a frame heard at `wanted` dB is decoded despite overlapping ones heard at
    `interferers` dB: never without a capture margin, else when it is at least `capture` dB
    above the strongest of them."""
    if not interferers:
        return True
    return capture is not None and wanted - max(interferers) >= capture
