"""The real-time side: the impairment model in front of a carrier, on the monotonic clock."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable

from linkbridge.plugin import ConfigError, Counters, LinkError, drops
from linkbridge_sim.config import SimConfig
from linkbridge_sim.decisions import RandomDecisions, ReplayDecisions
from linkbridge_sim.impairment import LOSS, DecisionSource, Impairment, Release
from linkbridge_sim.rate import CODEL
from linkbridge_sim.scheduler import ReleaseScheduler
from linkbridge_sim.trace import TraceWriter, read_trace

log = logging.getLogger("linkbridge")

SIM = "sim_"  # the prefix of the impairment model's drop reasons as counted
REASONS = {
    SIM + drops.MTU: "longer than the simulated link's mtu",
    SIM + LOSS: "lost by the simulated link's loss model",
    SIM + drops.QUEUE_FULL: "no room in the simulated link's queue (its limit)",
    SIM + CODEL: "dropped by CoDel: queued longer than the simulated link's codel_target",
}


def new_seed() -> int:
    """A fresh seed for a run that did not name one (logged, so the run can be repeated)."""
    return random.SystemRandom().randrange(1 << 32)


class ImpairedSender:
    """Impairs every packet given to send() and hands the survivors to `deliver` on time.

    Drops are counted in `counters` as `sim_<reason>`; corruptions, duplicates and reorders
    are tallied in `events`.
    """

    def __init__(self, name: str, config: SimConfig, seed: int | None, trace: str | None,
                 replay: str | None) -> None:
        self.name = name
        self.config = config
        self.seed = seed if seed is not None or replay else new_seed()
        self.trace_path = trace
        self.replay_path = replay
        self.events: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._impairment: Impairment | None = None
        self._scheduler: ReleaseScheduler | None = None
        self._trace: TraceWriter | None = None
        self._counters = Counters()
        self._deliver: Callable[[bytes], None] = lambda packet: None
        self._deliver_lost: Callable[[bytes], None] | None = None

    def open(self, deliver: Callable[[bytes], None], counters: Counters,
             deliver_lost: Callable[[bytes], None] | None = None) -> None:
        """Start; survivors go to `deliver`, lost packets that take airtime (loss_airtime) to
        `deliver_lost` (a radio's carrier), or nowhere when there is none."""
        self._counters = counters
        self._deliver_lost = deliver_lost
        source: DecisionSource
        if self.replay_path:
            try:
                source = ReplayDecisions(read_trace(self.replay_path))
            except ValueError as exc:
                raise ConfigError(f"{self.name}: replay {self.replay_path!r}: {exc}") from None
            log.info("%s: %s, replaying %s", self.name, self.config.describe(),
                     self.replay_path)
        else:
            source = RandomDecisions(self.config, random.Random(self.seed))
            log.info("%s: %s, seed %s", self.name, self.config.describe(), self.seed)
        if self.trace_path:
            self._trace = TraceWriter(self.trace_path, self.seed, self.config.describe())
        self._impairment = Impairment(self.config, source)
        self._scheduler = ReleaseScheduler(self.name, self._hand)
        self._deliver = deliver

    def _hand(self, release: Release) -> None:
        if not release.lost:
            self._deliver(release.packet)
        elif self._deliver_lost is not None:
            self._deliver_lost(release.packet)

    def send(self, packet: bytes) -> None:
        if self._impairment is None or self._scheduler is None:
            raise LinkError(f"{self.name}: used before open()")
        if self._scheduler.error is not None:
            raise LinkError(f"{self.name}: releasing packets failed: {self._scheduler.error}")
        now = time.monotonic()
        try:
            with self._lock:
                outcome = self._impairment.offer(packet, now)
                if self._trace is not None:
                    self._trace.write(outcome.to_record())
        except ValueError as exc:  # a malformed line in the replayed trace
            raise LinkError(f"{self.name}: replay {self.replay_path!r}: {exc}") from None
        for reason in outcome.drops:
            self._counters.drop(SIM + reason)
        decision = outcome.decision
        if decision is None and not outcome.drops:
            self.events["past_replay_end"] += 1
        if decision is not None:
            for event in ("duplicated", "reordered"):
                if getattr(decision, event):
                    self.events[event] += 1
            if decision.corrupt_bit is not None:
                self.events["corrupted"] += 1
        if all(r.at <= now for r in outcome.releases) and not self._scheduler.pending:
            for release in outcome.releases:  # due already, nothing ahead: no thread hop
                if release.lost:
                    self._hand(release)
                else:  # _hand() written out for the packets that go on: one call less each
                    self._deliver(release.packet)
        else:
            self._scheduler.submit(outcome.releases)

    def close(self) -> None:
        if self._scheduler is not None:
            self._scheduler.close()
            self._scheduler = None
        if self._trace is not None:
            self._trace.close()
            self._trace = None
        if self.events:
            log.info("%s: %s", self.name, dict(sorted(self.events.items())))
