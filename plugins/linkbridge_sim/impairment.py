"""The impairment model: what happens to each packet offered at a given time. Pure logic."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from linkbridge.plugin import drops
from linkbridge_sim.config import SimConfig
from linkbridge_sim.decisions import Decision
from linkbridge_sim.mahimahi import TraceRate
from linkbridge_sim.rate import RateQueue

LOSS = "loss"  # the drop reason of a packet lost by the loss model


class DecisionSource(Protocol):
    def decide(self, index: int, size: int) -> Decision | None:
        """The random decisions for packet number `index` (None: pass it unimpaired)."""


class Release(NamedTuple):
    """A packet to hand to the carrier at time `at` (same clock as `offer`'s `now`); a `lost`
    one (loss_airtime) only takes its time on the channel: nobody receives it. (A NamedTuple:
    one is made per packet, in a third of a frozen dataclass's time.)"""

    at: float
    packet: bytes
    lost: bool = False


@dataclass
class Outcome:
    """What became of one offered packet: its releases and the reasons of any drops."""

    index: int
    size: int
    decision: Decision | None
    releases: list[Release] = field(default_factory=list)
    drops: list[str] = field(default_factory=list)

    def to_record(self) -> dict[str, Any]:
        """One trace line: the decision plus the deterministic outcome, for people to read."""
        record: dict[str, Any] = {"i": self.index, "size": self.size}
        if self.decision is not None:
            record.update(self.decision.to_record())
        if self.drops:
            record["drops"] = self.drops
        return record


def flip_bit(packet: bytes, bit: int) -> bytes:
    """`packet` with bit number `bit` (0 = most significant bit of byte 0) inverted."""
    data = bytearray(packet)
    data[bit // 8 % len(data)] ^= 0x80 >> (bit % 8)
    return bytes(data)


class Impairment:
    """Applies MTU cap, the source's decisions, then the rate limiter and bounded queue.

    Drop reasons: `mtu` (larger than the MTU), `loss` (the loss model), `queue_full` (tail
    drop while `limit` packets or `limit_bytes` are held), `codel` (CoDel, rate.py). With
    `loss_airtime` a lost copy still takes its place in the queue and its transmission time,
    and comes out as a `lost` release (a radio puts it on the air; a pipe's carrier has
    nothing to send). No clock, no I/O: `now` is passed in.
    """

    def __init__(self, config: SimConfig, source: DecisionSource) -> None:
        self.config = config
        self.source = source
        trace = TraceRate(config.rate_trace) if config.rate_trace else None
        self.queue = RateQueue(config.rate, config.overhead, config.limit, trace,
                               config.limit_bytes, config.codel)
        self.offered = 0

    def offer(self, packet: bytes, now: float) -> Outcome:
        index = self.offered
        self.offered += 1
        if self.config.mtu is not None and len(packet) > self.config.mtu:
            return Outcome(index, len(packet), None, drops=[drops.MTU])
        decision = self.source.decide(index, len(packet))
        outcome = Outcome(index, len(packet), decision)
        if decision is None:
            decision = Decision()
        if decision.lost:
            outcome.drops.append(LOSS)
            if self.config.loss_airtime:
                at = self.queue.schedule(len(packet), 0.0, now)
                if not isinstance(at, str):
                    outcome.releases.append(Release(at, packet, lost=True))
        for copy, delay in enumerate(decision.delays):
            data = packet
            if copy == 0 and decision.corrupt_bit is not None and packet:
                data = flip_bit(packet, decision.corrupt_bit)
            at = self.queue.schedule(len(data), delay, now)
            if isinstance(at, str):
                outcome.drops.append(at)
            else:
                outcome.releases.append(Release(at, data))
        return outcome
