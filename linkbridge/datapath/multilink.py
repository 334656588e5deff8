"""The link scheduler: one endpoint over several links' lower halves (docs/multilink.md).

The upper stack (compress, encrypt) is built over it unchanged, so one session spans all
links. Each frame from above goes out behind a sequence number on the links the policy picks
(wire/multilink.py); each link also carries a probe every `probe_interval` seconds, so its
liveness follows its own frames, and the probes' reports measure each link's rate and round
trip for the balance policy (wire/linkrate.py). Frames from every link meet in one queue (a
reader thread per link), where copies are removed (counted `duplicate`) before the layers
above see them, and with the balance policy put back in order (a bounded wait for the frames
before them). A multipoint peer's scheduler (datapath/peerlinks.py) has no reader threads:
its lowers are handed their frames, and it takes what they hold when the router calls
receive().
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from linkbridge.datapath.counters import Counters
from linkbridge.datapath.endpoint import Endpoint, PathMtu
from linkbridge.errors import LinkbridgeError
from linkbridge.wire.linkrate import LinkMeter, Report
from linkbridge.wire.liveness import Change, Thresholds
from linkbridge.wire.multilink import (
    DATA_HEADER,
    NOMINAL_RATE,
    RESEQUENCE_WAIT,
    Dedup,
    LinkPace,
    LinkTable,
    Parsed,
    Policy,
    Resequencer,
    data_frame,
    parse,
    probe_frame,
)

SAMPLE_FRAME = 1500  # bytes of the frame by whose time a link's own rate is told

READ_WAIT = 0.2  # seconds a reader thread waits in its link's receive() before checking for close


def read_link(index: int, read: Callable[[float], list[Any]],
              inbox: queue.Queue[tuple[int, list[Any]] | BaseException],
              closing: threading.Event) -> None:
    """A reader thread's loop: what `read` (a link's receive, or receive_from) returns, into
    `inbox` behind the link's `index`, until `closing`; a LinkbridgeError that ends the link
    goes into `inbox` for the receiving thread to raise."""
    try:
        while not closing.is_set():
            got = read(READ_WAIT)
            if got:
                inbox.put((index, got))
    except LinkbridgeError as exc:
        if not closing.is_set():
            inbox.put(exc)


class LinkScheduler:
    """An endpoint over `lowers`, each a link's lower half (fragment over link), in order of
    preference. Counters count the frames of the layers above; `links` each link's own.
    `paces`: each link's figures for the balance policy (None: it declares none);
    `reorder_wait`: how long balance's receiver holds a frame for those before it (0: none).
    `readers` False: no reader threads nor probes of its own; receive() takes what the lowers
    hold now (a multipoint peer's ports, whose links the shared links read and probe)."""

    def __init__(self, lowers: Sequence[Endpoint], policy: Policy, thresholds: Thresholds,
                 hold_time: float, probe_interval: float,
                 clock: Callable[[], float] = time.monotonic,
                 paces: Sequence[LinkPace | None] = (),
                 reorder_wait: float = RESEQUENCE_WAIT, readers: bool = True) -> None:
        self.lowers = tuple(lowers)
        self.name = "links(" + ",".join(lower.name for lower in self.lowers) + ")"
        self.counters = Counters()
        self.probe_interval = probe_interval
        self._clock = clock
        now = clock()
        self._table = LinkTable(len(self.lowers), policy, thresholds, hold_time, now,
                                paces)
        self._resequencer = (Resequencer(reorder_wait)
                             if policy == Policy.BALANCE and reorder_wait > 0 else None)
        self._rx = [0] * len(self.lowers)  # frames (probes too) received per link
        self._declared = [pace is not None for pace in paces] or [False] * len(self.lowers)
        self._meters = [LinkMeter(own_rate(pace)) for pace in self._table.spreader.paces]
        self._probes_sent = 0
        self._next_probe = now
        self._seq = int.from_bytes(os.urandom(4), "big")
        self._dedup = Dedup()
        self._lock = threading.Lock()  # the table, the sequence number and the changes
        self._send_locks = [threading.Lock() for _ in self.lowers]
        self._changes: list[tuple[str, Change]] = []
        self._switch_listeners: list[Callable[[], None]] = []
        self._inbox: queue.Queue[tuple[int, list[bytes]] | BaseException] = queue.Queue()
        self._closing = threading.Event()
        self._readers = [threading.Thread(target=read_link, daemon=True, name=f"link-{index}",
                                          args=(index, lowers[index].receive, self._inbox,
                                                self._closing))
                         for index in range(len(lowers) if readers else 0)]
        for reader in self._readers:
            reader.start()

    def _send_on(self, index: int, frame: bytes) -> None:
        with self._send_locks[index]:
            self.lowers[index].send(frame)
            self._meters[index].sent += len(frame)

    def _observe(self, now: float) -> None:
        """Update the links' liveness (the caller holds the lock)."""
        for index, change in self._table.observe(self._rx, now):
            self._changes.append((self.lowers[index].name, change))

    def send(self, packet: bytes) -> None:
        now = self._clock()
        with self._lock:
            self._observe(now)
            switches = self._table.switches
            targets = self._table.targets(now, len(packet) + DATA_HEADER)
            switched = self._table.switches != switches
            self._seq += 1
            frame = data_frame(self._seq, packet)
        if switched:
            for listener in self._switch_listeners:
                listener()
        for index in targets:
            self._send_on(index, frame)
        self.counters.sent(len(packet))

    def receive(self, timeout: float) -> list[bytes]:
        if not self._readers:
            return self._deliver((index, frames) for index, lower in enumerate(self.lowers)
                                 if (frames := lower.receive(0)))
        self._probe()
        now = self._clock()
        release = self._resequencer.deadline() if self._resequencer else None
        wait = max(0.0, min(timeout, self._next_probe - now,
                            timeout if release is None else release - now))
        try:
            item = self._inbox.get(timeout=wait) if wait else self._inbox.get_nowait()
        except queue.Empty:
            item = None
        if isinstance(item, BaseException):
            raise item
        return self._deliver(() if item is None else (item,))

    def _deliver(self, items: Iterable[tuple[int, list[bytes]]]) -> list[bytes]:
        """The packets for above of `items` (each a link's index and frames from it), then
        those the resequencer gives up waiting for; the links' liveness updated."""
        packets: list[bytes] = []
        with self._lock:
            for index, frames in items:
                self._take(index, frames, packets)
            now = self._clock()
            if self._resequencer is not None:
                packets += self._resequencer.expire(now)
            self._observe(now)
        for packet in packets:
            self.counters.received(len(packet))
        return packets

    def _take(self, index: int, frames: list[bytes], packets: list[bytes]) -> None:
        """The frames `frames` from link `index`: the packets for above into `packets`
        (the caller holds the lock)."""
        resequencer = self._resequencer
        for frame in frames:
            parsed = parse(frame)
            if not isinstance(parsed, Parsed):
                self.counters.drop(parsed)
                continue
            self._rx[index] += 1
            self._meters[index].received += len(frame)
            if parsed.report is not None:
                self._measured(index, parsed.report)
            if parsed.seq is None:
                if parsed.payload:  # a one-link peer's bare frame (a probe has none)
                    packets.append(parsed.payload)
                continue
            reason = self._dedup.accept(frame)
            if reason is not None:
                self.counters.drop(reason)
            elif resequencer is None:
                packets.append(parsed.payload)
            else:
                packets += resequencer.push(parsed.seq, parsed.payload, self._clock())

    def _measured(self, index: int, report: Report) -> None:
        """The peer's report on link `index`: its measured figures to balance (the caller
        holds the lock); the round trip only for a link that declares no figures."""
        meter = self._meters[index]
        meter.take(report, self._clock())
        self._table.spreader.measured(
            index, meter.rate, None if self._declared[index] else meter.round_trip)

    def _probe(self) -> None:
        """A probe on every link when one is due (called where the receiving thread waits),
        with the link's report."""
        now = self._clock()
        if now < self._next_probe:
            return
        self._next_probe = now + self.probe_interval
        with self._lock:
            busy = self._table.spreader.busy_until
            reports = [meter.report(now, max(0.0, busy[index] - now))
                       for index, meter in enumerate(self._meters)]
        for index, report in enumerate(reports):
            self._send_on(index, probe_frame(report))
        self._probes_sent += 1
        with self._lock:
            self._observe(now)

    def path_frame_size(self, frame_size: int) -> int:
        """The smallest of the links' frame sizes, less the sequence header."""
        sizes = [lower.path_frame_size(frame_size + DATA_HEADER) if isinstance(lower, PathMtu)
                 else frame_size + DATA_HEADER for lower in self.lowers]
        return min(sizes) - DATA_HEADER

    def on_switch(self, listener: Callable[[], None]) -> None:
        """Call `listener` (on the sending thread) when failover moves to another link."""
        self._switch_listeners.append(listener)

    def link_changes(self) -> list[tuple[str, Change]]:
        """The links' state changes since the last call (link name, change), oldest first."""
        with self._lock:
            self._observe(self._clock())
            changes, self._changes = self._changes, []
        return changes

    def link_status(self) -> list[dict[str, Any]]:
        """Each link's state, whether it carries traffic now, and its counters."""
        now = self._clock()
        with self._lock:
            self._observe(now)
            active = set(self._table.in_use(now))
            return [{
                "name": lower.name,
                "state": str(liveness.state),
                "state_for_s": round(now - liveness.since, 3),
                "active": index in active,
                "probes_sent": self._probes_sent,
                "measured_rate_bps": None if meter.rate is None else round(meter.rate),
                "measured_rtt_ms": None if meter.round_trip is None
                else round(meter.round_trip * 1000, 1),
                "counters": lower.counters.as_dict(),
            } for index, (lower, liveness, meter) in enumerate(
                zip(self.lowers, self._table.liveness, self._meters, strict=True))]

    def reordering(self) -> dict[str, int]:
        """Balance's receiver: frames that came ahead of one before them (`reordered`), and
        gaps given up after the wait (`reorder_gaps`); empty without resequencing."""
        resequencer = self._resequencer
        if resequencer is None:
            return {}
        with self._lock:
            return {"reordered": resequencer.reordered, "reorder_gaps": resequencer.gaps}

    def release_in(self) -> float | None:
        """Seconds until balance's receiver stops waiting for the frames before one it holds
        (<= 0: now); None when it holds none."""
        if self._resequencer is None:
            return None
        with self._lock:
            deadline = self._resequencer.deadline()
        return None if deadline is None else deadline - self._clock()

    def usable_links(self) -> tuple[int, ...]:
        """The indices of the links that are not down (all of them when none is: a frame then
        goes out on every link)."""
        count = len(self.lowers)
        return tuple(i for i in range(count) if self._table.usable(i)) or tuple(range(count))

    @property
    def switches(self) -> int:
        """Times failover moved traffic to another link."""
        return self._table.switches

    def close(self) -> None:
        self._closing.set()
        for reader in self._readers:
            reader.join()
        for lower in self.lowers:
            lower.close()


def own_rate(pace: LinkPace) -> float:
    """The rate (bit/s) a link's own figures give it (NOMINAL_RATE for a link with none)."""
    frame_time = pace.frame_time(SAMPLE_FRAME)
    return SAMPLE_FRAME * 8 / frame_time if frame_time > 0 else NOMINAL_RATE
