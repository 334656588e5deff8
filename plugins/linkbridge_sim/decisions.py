"""Per-packet decisions: drawn from a seeded generator, or read back from a trace."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from linkbridge_sim.config import SimConfig
from linkbridge_sim.delay import DelayModel
from linkbridge_sim.loss import LossModel, loss_model


@dataclass(frozen=True)
class Decision:
    """Everything random about one packet. `delays` has one entry per copy sent on (none
    when lost, two when duplicated; a duplicated packet that is also lost sends one copy,
    as in netem). `corrupt_bit` is the bit flipped in the first copy."""

    lost: bool = False
    duplicated: bool = False
    corrupt_bit: int | None = None
    reordered: bool = False
    delays: tuple[float, ...] = (0.0,)

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"delays": list(self.delays)}
        for name in ("lost", "duplicated", "reordered"):
            if getattr(self, name):
                record[name] = True
        if self.corrupt_bit is not None:
            record["corrupt_bit"] = self.corrupt_bit
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Decision:
        """The decision a trace line holds; raises ValueError when it is malformed."""
        delays = record.get("delays", [0.0])
        corrupt_bit = record.get("corrupt_bit")
        if not (isinstance(delays, list) and len(delays) <= 2
                and all(isinstance(d, int | float) and d >= 0 for d in delays)):
            raise ValueError("'delays' must be a list of at most two non-negative numbers")
        if corrupt_bit is not None and not (isinstance(corrupt_bit, int) and corrupt_bit >= 0):
            raise ValueError("'corrupt_bit' must be a non-negative whole number")
        return cls(lost=bool(record.get("lost")), duplicated=bool(record.get("duplicated")),
                   corrupt_bit=corrupt_bit, reordered=bool(record.get("reordered")),
                   delays=tuple(float(d) for d in delays))


class RandomDecisions:
    """Draws decisions from `rng` in a fixed order per packet: duplicate, loss, corruption,
    reorder, one delay per copy. Same seed and same packet sizes -> same decisions."""

    def __init__(self, config: SimConfig, rng: random.Random) -> None:
        self.config = config
        self.rng = rng
        self.loss: LossModel = loss_model(config)
        self.delay = DelayModel(config.delay, config.jitter, config.distribution,
                                config.delay_corr)

    def decide(self, index: int, size: int) -> Decision:
        c, rng = self.config, self.rng
        duplicated = bool(c.duplicate) and rng.random() < c.duplicate
        lost = self.loss.lost(rng)
        corrupt_bit = None
        if c.corrupt and rng.random() < c.corrupt and size:
            corrupt_bit = rng.randrange(size * 8)
        reordered = bool(c.reorder) and rng.random() < c.reorder
        copies = 1 + duplicated - lost
        delays = [self.delay.sample(rng) for _ in range(copies)]
        if reordered and delays:
            delays[0] = 0.0
        return Decision(lost, duplicated, corrupt_bit, reordered, tuple(delays))


class ReplayDecisions:
    """Hands out the decisions a trace recorded for each packet index; None past its end."""

    def __init__(self, records: Iterable[Mapping[str, Any]]) -> None:
        self._by_index: dict[int, Mapping[str, Any]] = {}
        for record in records:
            index = record.get("i")
            if not isinstance(index, int) or index < 0:
                raise ValueError("every trace record needs its packet index 'i'")
            self._by_index[index] = record
        self._end = max(self._by_index, default=-1)

    def decide(self, index: int, size: int) -> Decision | None:
        if index > self._end:
            return None
        return Decision.from_record(self._by_index.get(index, {}))
