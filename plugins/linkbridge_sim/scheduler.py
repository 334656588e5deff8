"""Hands releases over at their scheduled times from one thread, sleeping until the next is due."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable

from linkbridge_sim.impairment import Release

log = logging.getLogger("linkbridge")


LEAD_LIMIT = 0.002  # never start a release more than this early
LEAD_GAIN = 0.05  # how fast the lead follows the measured wake-up lateness


class ReleaseScheduler:
    """A heap of pending releases and a thread that hands each to `deliver` when it is due.

    The thread waits on a condition with a timeout until the earliest release (no polling);
    a new earlier release wakes it. Bounded by the impairment model's queue limit. A thread
    wakes up late by a variable amount (a tenth of a millisecond on an idle machine, more under
    load), so it wakes `lead` seconds early, with `lead` steered so that timed releases happen
    on schedule on average: the mean delay is the configured one.
    """

    def __init__(self, name: str, deliver: Callable[[Release], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.lead = 0.0
        self._deliver = deliver
        self._heap: list[tuple[float, int, Release]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._closed = False
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"{name}-release", daemon=True)
        self._thread.start()

    def submit(self, releases: Iterable[Release]) -> None:
        with self._wake:
            earliest = self._heap[0][0] if self._heap else None
            for release in releases:
                heapq.heappush(self._heap, (release.at, next(self._order), release))
            if self._heap and (earliest is None or self._heap[0][0] < earliest):
                self._wake.notify()

    @property
    def pending(self) -> int:
        with self._wake:
            return len(self._heap)

    def _due(self) -> list[Release] | None:
        """Wait for the next due packets; None once closed."""
        with self._wake:
            slept = False
            while not self._closed:
                now = self.clock()
                if self._heap and self._heap[0][0] - self.lead <= now:
                    if slept:  # a timed wake-up: steer the lead by how late it came
                        late = now - self._heap[0][0]
                        self.lead = min(LEAD_LIMIT, max(0.0, self.lead + LEAD_GAIN * late))
                    due = []
                    while self._heap and self._heap[0][0] - self.lead <= now:
                        due.append(heapq.heappop(self._heap)[2])
                    return due
                wait = self._heap[0][0] - self.lead - now if self._heap else None
                slept = self._wake.wait(wait) is False and wait is not None
            return None

    def _run(self) -> None:
        try:
            while (due := self._due()) is not None:
                for release in due:
                    self._deliver(release)
        except Exception as exc:  # reported by the link's next send()
            log.exception("sim: releasing packets failed")
            self.error = exc

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        if self._thread is not threading.current_thread():
            self._thread.join()
