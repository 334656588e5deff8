"""What `linkbridge lab` asks of a link, as optional protocols a link class may implement.

A link that can join the two lab hosts implements `LabPairing`, one that can join many
stations (`lab --stations N`) `LabStations`; one (or a wrapper) that knows what
it is configured to do implements `LabFigures`, and the lab report shows those figures beside
what it measured; one that can measure itself too implements `LabMeasuring`. None is part of
`Link`: a link without them simply cannot be used by the lab (or shows no configured figures).
Public API for plugins that offer a lab pair (`from linkbridge.plugin.lab import ...`),
documented in docs/plugins.md's API reference.
"""

from __future__ import annotations

import contextlib
import select
import subprocess
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from linkbridge.errors import LinkError
from linkbridge.plugin.units import format_rate
from linkbridge.plugin.url import LinkUrl

__all__ = ["SERIAL_BITS_PER_BYTE", "LabDirection", "LabFigures", "LabMeasuring", "LabPairing",
           "LabSides", "LabStation", "LabStationHosts", "LabStations", "format_rate",
           "lab_helper"]

SERIAL_BITS_PER_BYTE = 10  # the lab's serial cable is 8N1: start bit, 8 data bits, stop bit
HELPER_START_TIMEOUT = 10.0  # seconds a lab helper may take to say `ready`


@contextlib.contextmanager
def lab_helper(argv: Sequence[str], what: str) -> Iterator[subprocess.Popen[str]]:
    """Run a link's lab helper process (a simulated medium, a hub) until the context ends:
    it is started when its first line of output starts with `ready` (LinkError naming `what`
    and the end of its errors otherwise), and terminated (killed after 5 s) on exit."""
    process = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], HELPER_START_TIMEOUT)
        line = process.stdout.readline() if ready else ""
        if not line.startswith("ready"):
            process.kill()
            _, errors = process.communicate()
            raise LinkError(f"the lab's {what} did not start: {errors.strip()[-300:]}")
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass(frozen=True)
class LabSides:
    """The two lab hosts a link must join: their network namespaces and underlay addresses.

    `serial_cable(baud)` lays a null-modem cable between them: a context that yields the two
    pty paths (A's end, B's end), paced at `baud` (SERIAL_BITS_PER_BYTE line bits per byte),
    and removes them on exit.
    """

    a_netns: str
    b_netns: str
    a_address: str
    b_address: str
    serial_cable: Callable[[int], AbstractContextManager[tuple[str, str]]]


@dataclass(frozen=True)
class LabDirection:
    """What a link is configured to do to one lab direction, for the lab report to compare
    with what it measures and for the lab's probes to pace themselves: loss fraction, mean
    added delay (s), rate limit (bit/s), the bytes of framing each packet costs on the line,
    and whether both directions share one channel (half duplex: a frame sent while the
    other side's is on the air collides or waits, so the lab's pings wait a round trip)."""

    loss: float = 0.0
    delay: float = 0.0
    rate: float | None = None
    overhead: int = 0
    airtime: Callable[[int], float] | None = None  # a radio's time on air, instead of the rate
    half_duplex: bool = False

    def latency(self, size: int) -> float:
        """Mean one-way time a `size`-byte packet spends in the link: delay + serialisation
        (its `airtime` where a modulation, e.g. LoRa's, is not a plain bit rate)."""
        if self.airtime is not None:
            return self.delay + self.airtime(size)
        serialise = max(0, size + self.overhead) * 8 / self.rate if self.rate else 0.0
        return self.delay + serialise


@runtime_checkable
class LabPairing(Protocol):
    """A link class the lab can use: it knows how to join the two lab hosts."""

    def lab_pair(self, url: LinkUrl,
                 sides: LabSides) -> AbstractContextManager[tuple[LinkUrl, LinkUrl]]:
        """(A classmethod.) A context yielding the URLs side A and side B use to reach each
        other; it may set up helpers (a pty pair...) and tears them down on exit."""
        ...


@runtime_checkable
class LabMeasuring(Protocol):
    """A link class that measures itself in the lab (e.g. a simulated medium's counters)."""

    def lab_measured(self, url: LinkUrl, sides: LabSides) -> list[tuple[str, str, str, str]]:
        """(A classmethod.) Called while the lab's tunnels are still up, after the probes:
        report rows (label, configured, measured, note) to add beside the lab's own."""
        ...


@runtime_checkable
class LabFigures(Protocol):
    """A link or wrapper class that says what it is configured to do in the lab."""

    def lab_configured(self, url: LinkUrl) -> tuple[LabDirection, LabDirection] | None:
        """(A classmethod.) The configured A -> B and B -> A behaviour, or None if the URL
        configures none."""
        ...


@dataclass(frozen=True)
class LabStationHosts:
    """The hosts of `lab --stations N`: each one's network namespace, underlay address (all on
    one switch) and station name, and the topology file given (None: everyone hears everyone;
    its format is the link's)."""

    netns: tuple[str, ...]
    addresses: tuple[str, ...]
    names: tuple[str, ...]
    topology: str | None = None


@dataclass(frozen=True)
class LabStation:
    """How one lab station joins: its link URL, its station as the others name it (their
    `--peer ...,endpoint=`), and the indices of the stations it hears and is heard by."""

    url: LinkUrl
    endpoint: str
    neighbours: tuple[int, ...]


@runtime_checkable
class LabStations(Protocol):
    """A link class that joins many lab stations on one addressed link."""

    def lab_stations(self, url: LinkUrl,
                     hosts: LabStationHosts) -> AbstractContextManager[list[LabStation]]:
        """(A classmethod.) A context yielding each station's LabStation (in the order of
        `hosts`); it may start a helper (a medium) and stops it on exit. A bad URL or
        topology raises ConfigError."""
        ...

    def lab_station_rows(self, url: LinkUrl,
                         hosts: LabStationHosts) -> list[tuple[str, str, str, str]]:
        """(A classmethod.) Called inside lab_stations() after the probes: report rows
        (label, configured, measured, note) of the link's own counters, or none."""
        ...
