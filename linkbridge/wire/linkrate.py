"""Each link's rate and round trip, measured from the probes (docs/multilink.md). Pure: the
caller passes the byte counts and the time.

Every probe of a multi-link tunnel carries a Report: the sender's clock (`stamp`), an echo of
the last stamp it received from the peer on that link with the time it held it (so the peer
gets the link's round trip), and the bytes it received on that link so far. From two reports
in a row the sender of the frames learns how fast the link delivered them (bytes over the
receiver's own clock) and compares it with how fast it gave the link frames meanwhile: a link
given more than it delivered, or whose round trip grew well above its least and the queue
balance counted on when the probe left (a longer queue than its rate would make: TCP gives
a link little more than it delivers), had a backlog; with one at the report before too
it was busy all the time between them, so what it delivered is a sample of its rate (a link
given less than MIN_BYTES had none: its round trip wavers with the hosts' load). The rate is
the most of the samples of the last RATE_SAMPLES reports (one after the link was given
little, its queue draining, is no slowdown); when none of them had a backlog and the link was
given at least half its rate, it may be faster: its rate grows by GROWTH a report. A rate
above NEAR of the link's own figure (`ceiling`) counts as unmeasured (the figure stands: a
loaded host's wavering round trips move no share between equal links). The reports travel in
clear below the encrypt layer: a forged one can move a link's share of balance's traffic,
never drop or deliver a frame.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

TICK = 1e-4  # seconds a unit of the stamps and the held time: 0.1 ms
SPACE = 1 << 32  # the stamps and the byte counts wrap
NO_ECHO = 0xFFFF  # held time of a report that echoes nothing (none received, or held too long)
REPORT = struct.Struct("!IIHI")  # stamp, echo, held, received bytes
BACKLOG = 1.25  # given this much more than it delivered, a link had a backlog
# a round trip over twice the least, the queue counted on and 10 ms more: a longer queue
QUEUED, QUEUED_SLACK = 2.0, 0.010
GROWTH = 1.25  # a link that kept up may be this much faster, a report later
NEAR = 0.8  # a rate measured above this share of the link's own figure counts as that figure
FLOOR = 8000.0  # bit/s: the least a measured rate counts as
MIN_BYTES = 3000  # bytes given a link between two reports below which they say nothing of its rate
RATE_SAMPLES = 4  # reports whose most delivered is the rate: a starved one is no slowdown
QUEUES = 8  # the last probes whose queue as counted is kept, for their echo
RTT_SAMPLES = 300  # round trips the least of which is the link's (a minute of probes at 0.2 s)


@dataclass(frozen=True)
class Report:
    """What a probe tells the peer about one link (see the module docstring)."""

    stamp: int
    echo: int
    held: int
    received: int

    def pack(self) -> bytes:
        return REPORT.pack(self.stamp, self.echo, self.held, self.received)

    @classmethod
    def unpack(cls, body: bytes) -> Report:
        """The report `body` holds (REPORT.size bytes)."""
        return cls(*REPORT.unpack(body))


def ticks(now: float) -> int:
    return round(now / TICK) % SPACE


class LinkMeter:
    """One link's reports, both ways: what this side received on it (for the reports it
    sends) and what the peer's reports say of it (its measured rate and round trip).
    `ceiling`: the link's own rate (bit/s), above which a measured rate counts as none."""

    def __init__(self, ceiling: float) -> None:
        self.ceiling = ceiling
        self.received = 0  # bytes this side received on the link
        self.sent = 0  # bytes this side gave the link
        self.rate: float | None = None  # bit/s it delivered when it had a backlog
        self._peer_stamp: tuple[int, float] | None = None  # the peer's last stamp, got when
        self._last: tuple[Report, float, int] | None = None  # last report, got when, sent then
        self._rtts: deque[float] = deque(maxlen=RTT_SAMPLES)
        self._samples: deque[float | None] = deque(maxlen=RATE_SAMPLES)  # None: it kept up
        self._backlog = False  # whether it had a backlog at the last report
        self._queues: deque[tuple[int, float]] = deque(maxlen=QUEUES)  # probes' stamp, queue

    def report(self, now: float, queue: float = 0.0) -> Report:
        """The report for a probe sent on the link at `now`, when the sender counts on the
        link's queue taking `queue` seconds (balance's model of it, by the rate it counts)."""
        echo, held = 0, NO_ECHO
        if self._peer_stamp is not None:
            stamp, got = self._peer_stamp
            if (now - got) / TICK < NO_ECHO:
                echo, held = stamp, round((now - got) / TICK)
        report = Report(ticks(now), echo, held, self.received % SPACE)
        self._queues.append((report.stamp, queue))
        return report

    def take(self, report: Report, now: float) -> None:
        """The peer's `report`, received on the link at `now`."""
        self._peer_stamp = (report.stamp, now)
        queued = False
        if report.held != NO_ECHO:
            rtt = ((ticks(now) - report.echo - report.held) % SPACE) * TICK
            if rtt < 60.0:
                self._rtts.append(rtt)
                expected = next((queue for stamp, queue in self._queues
                                 if stamp == report.echo), 0.0)
                queued = rtt > QUEUED * min(self._rtts) + expected + QUEUED_SLACK
        last, self._last = self._last, (report, now, self.sent)
        if last is None:
            return
        before, then, sent_then = last
        peer_time = ((report.stamp - before.stamp) % SPACE) * TICK
        if peer_time <= 0 or now <= then:
            return
        given = self.sent - sent_then
        given_rate = given * 8 / (now - then)
        delivered = ((report.received - before.received) % SPACE) * 8 / peer_time
        backlog = given >= MIN_BYTES and (queued or given_rate > BACKLOG * delivered)
        busy, self._backlog = backlog and self._backlog, backlog
        if busy:
            self._samples.append(max(FLOOR, delivered))
        elif backlog:
            return  # it may have been idle for part of the time before this report
        elif self.rate is not None and given_rate >= self.rate / 2:
            self._samples.append(None)
        else:
            return
        measured = [sample for sample in self._samples if sample is not None]
        rate = max(measured) if measured else (self.rate or self.ceiling) * GROWTH
        self.rate = rate if rate < NEAR * self.ceiling else None

    @property
    def round_trip(self) -> float | None:
        """The least round trip of the recent reports (None: none measured yet)."""
        return min(self._rtts) if self._rtts else None
