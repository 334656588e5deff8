"""A conformance suite any link plugin runs against itself with pytest (docs/plugins.md).

Subclass `LinkConformance` under a name pytest collects (`Test...`), set `scheme`, and implement
`pair()`, a context manager yielding the URLs of two links that reach each other:

    class TestTcpConformance(LinkConformance):
        scheme = "tcp"

        @contextlib.contextmanager
        def pair(self):
            port = free_port(socket.SOCK_STREAM)
            yield f"tcp:127.0.0.1:{port}?listen=1", f"tcp:127.0.0.1:{port}"

The suite adds options to those URLs itself. It checks what a user of a tunnel would notice:
packets arrive whole, in both directions and under sustained two-way traffic, with every
missing packet a counted drop and none dropped under plain load; `send` never raises for
transient trouble; `receive` keeps its timeout; the lab pair joins two sides; `close` is
final, wakes a blocked `receive` and releases every descriptor; errors are `LinkError` and
`ConfigError` with one line. Every failure says what the plugin must change.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar

import pytest

from linkbridge.errors import ConfigError, LinkbridgeError, LinkError
from linkbridge.plugin.faults import (
    Measured,
    corruption,
    describe_loss,
    index_of,
    numbered,
    summary_line,
)
from linkbridge.plugin.lab import LabPairing, LabSides
from linkbridge.plugin.link import Link
from linkbridge.plugin.options import Option
from linkbridge.plugin.registry import LinkRegistry, plugin_registry
from linkbridge.plugin.url import LinkUrl, parse_link_url
from linkbridge.wire.drops import MTU, REASONS

DELIVERY_TIMEOUT = 10.0  # generous: the CI machine is shared and busy
STALL = 5.0  # sustained traffic: seconds without progress before a direction gives up
STRAGGLERS = 1.0  # and once everything is sent, seconds to wait for packets still on their way
SIZES = (1, 20, 64, 576, 1280, 1400)
QUIET = 0.3  # seconds to wait for a packet that must not arrive
SEND_LIMIT = 5.0  # seconds one send() may take before the suite calls it blocked
WATCH = 0.05  # seconds between the watchdog's looks at a running send()


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port on 127.0.0.1 that is free right now (for UDP by default, or SOCK_STREAM)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def receive_exactly(link: Link, count: int, timeout: float = DELIVERY_TIMEOUT) -> list[bytes]:
    """Receive until `count` packets arrived or `timeout` passed; return what arrived."""
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got += link.receive(0.2)
    return got


def payloads(seed: int, sizes: tuple[int, ...]) -> list[bytes]:
    """Seeded random payloads of the given sizes (not valid IP: links must not care)."""
    rng = random.Random(seed)
    return [rng.randbytes(size) for size in sizes]


def with_options(url: str, options: dict[str, str]) -> str:
    """`url` with `options` added to (or replacing) its own."""
    parsed = parse_link_url(url)
    return str(LinkUrl(parsed.scheme, parsed.target, {**parsed.options, **options}))


def open_descriptors() -> int:
    """How many file descriptors this process has open."""
    return len(os.listdir("/proc/self/fd"))


class SendTimer:
    """Times the send() calls of one thread, so that another can see one that blocks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: float | None = None
        self.longest = 0.0  # seconds the longest send() took

    def send(self, link: Link, packet: bytes) -> None:
        started = time.monotonic()
        with self._lock:
            self._since = started
        try:
            link.send(packet)
        finally:
            with self._lock:
                self._since = None
                self.longest = max(self.longest, time.monotonic() - started)

    def running_for(self) -> float:
        """Seconds the send() now running has taken (0 when none runs)."""
        with self._lock:
            return 0.0 if self._since is None else time.monotonic() - self._since


def blocked_send(scheme: str, seconds: float, where: str) -> str:
    return (f"{scheme}: send() blocked for more than {seconds:g} s ({where}): send() may wait "
            "for room only briefly (StreamLink waits up to write_timeout, 2 s), then count "
            "a drop (self.counters.drop(drops.QUEUE_FULL)); a send() that hangs stops the "
            "tunnel")


def send_within(scheme: str, link: Link, packets: list[bytes], limit: float) -> None:
    """Send `packets` on a thread the caller watches: fail when one send() takes over `limit`
    seconds, raise what send() raised."""
    timer, raised = SendTimer(), []

    def send_all() -> None:
        try:
            for packet in packets:
                timer.send(link, packet)
        except BaseException as exc:  # raised again below, in the test's thread
            raised.append(exc)

    thread = threading.Thread(target=send_all, daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(WATCH)
        if timer.running_for() > limit:
            pytest.fail(blocked_send(scheme, limit, f"one of {len(packets)} packets"),
                        pytrace=False)
    if raised:
        raise raised[0]


@dataclass
class Flow:
    """One direction of sustained traffic: numbered packets, a window of packets in flight.

    On an ordered link a packet counts as in flight until it or a later one arrives, so that
    lost packets do not fill the window (their loss is reported, not a stall)."""

    name: str
    sender: Link
    receiver: Link
    packets: list[bytes]
    window: int
    ordered: bool = True
    sent: int = 0
    got: list[bytes] = field(default_factory=list)
    newest: int = -1  # the highest packet number arrived intact
    error: BaseException | None = None
    error_in: str = ""
    stalled: bool = False
    finished: bool = False
    began: float = 0.0
    last_arrival: float = 0.0
    timer: SendTimer = field(default_factory=SendTimer)
    moved: threading.Condition = field(default_factory=threading.Condition)

    def in_flight(self) -> int:
        return self.sent - (self.newest + 1 if self.ordered else len(self.got))

    def send_all(self) -> None:
        self.began = time.monotonic()
        for packet in self.packets:
            with self.moved:
                if not self.moved.wait_for(lambda: self.in_flight() < self.window
                                           or self.stalled, STALL):
                    self.stalled = True
                if self.stalled:
                    return
            try:
                self.timer.send(self.sender, packet)
            except BaseException as exc:  # reported by the test, with what the link must do
                self.error, self.error_in = exc, "send()"
                return
            with self.moved:
                self.sent += 1
        self.finished = True

    def receive_all(self, start: threading.Event) -> None:
        start.wait()
        last = time.monotonic()
        while len(self.got) < len(self.packets) and not self.stalled:
            try:
                packets = self.receiver.receive(0.1)
            except BaseException as exc:
                if self.error is None:
                    self.error, self.error_in = exc, "receive()"
                packets = []
                self.stalled = True
            now = time.monotonic()
            with self.moved:
                self.got += packets
                for packet in packets:
                    index = index_of(packet, self.packets)
                    self.newest = self.newest if index is None else max(self.newest, index)
                if packets:
                    last = self.last_arrival = now
                elif now - last > (STRAGGLERS if self.finished or self.error else STALL):
                    self.stalled = True
                self.moved.notify_all()


class MeasuredSummary:
    """A pytest plugin, registered by the first test that measures: prints what the suite
    measured as a section of pytest's terminal summary, one line per link."""

    name = "linkbridge-conformance-measured"

    def __init__(self) -> None:
        self.lines: list[str] = []

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        terminalreporter.write_sep("-", "linkbridge conformance: measured")
        for line in self.lines:
            terminalreporter.write_line(line)


def report_measured(config: pytest.Config, line: str) -> None:
    """Add `line` to the terminal summary of this pytest run."""
    summary = config.pluginmanager.get_plugin(MeasuredSummary.name)
    if not isinstance(summary, MeasuredSummary):
        summary = MeasuredSummary()
        config.pluginmanager.register(summary, MeasuredSummary.name)
    summary.lines.append(line)


class LinkConformance:
    """The checks every link plugin should pass; subclass it as `Test<Name>Conformance`.

    Set `scheme` and implement `pair()`; implement `unopenable()` if the link can fail to
    open. Optional class attributes:

    - `plugins`: plugin modules (or objects) to test as they are, without installing them; by
      default the installed plugins are used and the link must register through entry points.
    - `ordered` (False for links that may reorder), `bad_options` (option -> a value the link
      must refuse), `max_payload` (largest packet sent, for links with small frames).
    - `sustained_packets`, `window`, `late_receiver`: how many packets each direction carries
      in the sustained test, how many may be in flight (sent, not yet received) at once, and
      how many seconds after the senders the receivers start (a peer that falls behind; 0 for
      a line without flow control, which loses what its receiver does not read in time).
    - `reopens`: the link supports open() again after close() (checked only then).
    - `send_limit`: seconds one send() may take before it counts as blocked (raise it only for
      a line so slow that one packet takes longer).
    - `lab_traffic`: the links of `lab_pair()` can run side by side in one process (pipes,
      ptys); False when they need the lab's two network namespaces (the test then checks only
      that the two sides differ). Override `lab_sides()` to hand `lab_pair()` real sides.
    """

    scheme: ClassVar[str]
    plugins: ClassVar[tuple[object, ...]] = ()
    ordered: ClassVar[bool] = True
    bad_options: ClassVar[dict[str, str]] = {}
    max_payload: ClassVar[int] = 1400
    sustained_packets: ClassVar[int] = 2000
    window: ClassVar[int] = 128
    late_receiver: ClassVar[float] = 0.3
    reopens: ClassVar[bool] = False
    lab_traffic: ClassVar[bool] = True
    send_limit: ClassVar[float] = SEND_LIMIT

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # collected only where the link claims it (None is no test to pytest)
        check = LinkConformance.test_reopens_after_close if cls.reopens else None
        cls.test_reopens_after_close = check  # type: ignore[method-assign,assignment]

    @contextlib.contextmanager
    def pair(self) -> Iterator[tuple[str, str]]:
        """Yield URLs of two links that reach each other (the suite adds options itself)."""
        raise NotImplementedError("a conformance subclass must implement pair()")
        yield  # pragma: no cover

    @contextlib.contextmanager
    def unopenable(self) -> Iterator[str | None]:
        """Yield a URL whose open() must fail (e.g. its port is taken), or None to skip."""
        yield None

    @contextlib.contextmanager
    def lab_sides(self) -> Iterator[LabSides]:
        """The two lab hosts `lab_pair()` is given. By default two addresses of the lab range
        and no serial cable (override to hand out one, e.g. a pty pair)."""

        def no_cable(baud: int) -> contextlib.AbstractContextManager[tuple[str, str]]:
            pytest.skip(f"{self.scheme}: lab_pair() asks for a serial cable; override "
                        "lab_sides() to provide one")

        yield LabSides("lbconf-a", "lbconf-b", "198.18.0.1", "198.18.0.2", no_cable)

    # --- helpers ---------------------------------------------------------------------------

    def registry(self) -> LinkRegistry:
        return plugin_registry(*self.plugins)

    @contextlib.contextmanager
    def urls(self, **options: str) -> Iterator[tuple[str, str]]:
        with self.pair() as (url_a, url_b):
            yield with_options(url_a, options), with_options(url_b, options)

    @contextlib.contextmanager
    def opened(self, **options: str) -> Iterator[tuple[Link, Link]]:
        registry = self.registry()
        with self.urls(**options) as (url_a, url_b):
            a, b = registry.create_link(url_a), registry.create_link(url_b)
            try:
                a.open()
                b.open()
                yield a, b
            finally:
                a.close()
                b.close()
            for link in (a, b):
                undeclared = sorted(set(link.counters.drops) - {*REASONS, *link.drop_reasons})
                assert not undeclared, (
                    f"{self.scheme}: counted drop reasons declared nowhere: "
                    f"{', '.join(undeclared)}: declare each in the class's `drop_reasons` with "
                    "a one-line description (or count a reason of `drops`)")

    def _sizes(self) -> tuple[int, ...]:
        return tuple(min(size, self.max_payload) for size in SIZES)

    def _carry(self, sender: Link, receiver: Link, packets: list[bytes]) -> None:
        send_within(self.scheme, sender, packets, self.send_limit)
        got = receive_exactly(receiver, len(packets))
        lost = len(packets) - len(got)
        assert not lost, (f"{self.scheme}: sent {len(packets)} packets, {len(got)} arrived "
                          f"within {DELIVERY_TIMEOUT} s; drops counted: sender "
                          f"{dict(sender.counters.drops)}, receiver "
                          f"{dict(receiver.counters.drops)}")
        changed = len(set(got) - set(packets))
        assert not changed, (f"{self.scheme}: {changed} of {len(packets)} packets arrived "
                             "corrupted (their bytes changed on the way)")
        if self.ordered:
            assert got == packets, f"{self.scheme}: packets arrived out of order"
        else:
            assert sorted(got) == sorted(packets), f"{self.scheme}: packets arrived twice"

    def _sustained_packets(self, seed: int) -> list[bytes]:
        """Numbered packets (a 4-byte index, then random bytes) of random sizes."""
        rng = random.Random(seed)
        top = max(8, self.max_payload)
        return [numbered(index, rng.randbytes(rng.randint(4, top - 4)))
                for index in range(self.sustained_packets)]

    # --- the checks ------------------------------------------------------------------------

    def test_registered_with_summary_and_options(self) -> None:
        how = ("through the plugins given in `plugins`" if self.plugins
               else "through the `linkbridge` entry-point group (is the plugin installed?)")
        try:
            cls = self.registry().link_class(self.scheme)
        except ConfigError as exc:
            pytest.fail(f"{self.scheme}: no link registered {how}: {exc}", pytrace=False)
        assert issubclass(cls, Link)
        assert cls.scheme == self.scheme
        assert cls.summary, "a link needs a one-line `summary` for `linkbridge links`"
        assert all(isinstance(option, Option) for option in cls.options), \
            "`options` must be a tuple of Option"
        names = [option.name for option in cls.options]
        assert len(set(names)) == len(names), f"options declared twice: {names}"

    def test_packets_arrive_whole_both_ways(self) -> None:
        with self.opened() as (a, b):
            self._carry(a, b, payloads(1, self._sizes()))
            self._carry(b, a, payloads(2, self._sizes()))

    def test_counters_add_up(self) -> None:
        packets = payloads(3, self._sizes())
        with self.opened() as (a, b):
            self._carry(a, b, packets)
            assert (a.counters.tx_packets, a.counters.tx_bytes) == \
                (len(packets), sum(map(len, packets))), \
                "count each packet sent with self.counters.sent(len(packet))"
            assert (b.counters.rx_packets, b.counters.rx_bytes) == \
                (len(packets), sum(map(len, packets))), \
                "count each packet received with self.counters.received(len(packet))"

    def test_sustained_traffic_both_ways_loses_nothing(self, request: pytest.FixtureRequest
                                                       ) -> None:
        """Thousands of packets each way at once, `window` in flight, the receivers starting
        late (a peer that falls behind): nothing may be lost, dropped or changed, and no
        send() may block. What it measured is one line of pytest's terminal summary."""
        with self.opened() as (a, b):
            flows = [Flow("A -> B", a, b, self._sustained_packets(4), self.window, self.ordered),
                     Flow("B -> A", b, a, self._sustained_packets(5), self.window, self.ordered)]
            start = threading.Event()
            threads = [threading.Thread(target=job, daemon=True)
                       for flow in flows for job in (flow.send_all,
                                                     lambda f=flow: f.receive_all(start))]
            for thread in threads:
                thread.start()
            time.sleep(self.late_receiver)
            start.set()
            try:
                self._watch(flows, threads)
            finally:
                drops = a.counters.drops + b.counters.drops
                report_measured(request.config, self._measured(flows, drops))
            self._judge(flows, drops)

    def _watch(self, flows: list[Flow], threads: list[threading.Thread]) -> None:
        """Wait for the flows to end; fail as soon as one send() blocks."""
        deadline = time.monotonic() + 2 * STALL + 30
        while any(thread.is_alive() for thread in threads) and time.monotonic() < deadline:
            time.sleep(WATCH)
            for flow in flows:
                if flow.timer.running_for() > self.send_limit:
                    for each in flows:
                        each.stalled = True
                    pytest.fail(blocked_send(self.scheme, self.send_limit,
                                             f"{flow.name}, packet {flow.sent + 1} of "
                                             f"{len(flow.packets)}"), pytrace=False)

    def _measured(self, flows: list[Flow], drops: Counter[str]) -> str:
        directions = [Measured(flow.name, flow.sent, len(flow.got), sum(map(len, flow.got)),
                               max(0.0, flow.last_arrival - flow.began)) for flow in flows]
        sizes = [len(packet) for flow in flows for packet in flow.packets]
        return summary_line(self.scheme, sizes, directions, drops,
                            max(flow.timer.longest for flow in flows))

    def _judge(self, flows: list[Flow], drops: Counter[str]) -> None:
        for flow in flows:
            if flow.error is not None:
                pytest.fail(
                    f"{self.scheme}: {flow.error_in} raised {flow.error!r} during sustained "
                    f"traffic ({flow.name}, after {flow.sent} packets): transient trouble (a "
                    "full queue, a busy peer) must wait for room or be a counted drop "
                    "(self.counters.drop(drops.QUEUE_FULL)), never an exception", pytrace=False)
        for flow in flows:
            changed, example = corruption(flow.packets, flow.got)
            if changed:
                pytest.fail(
                    f"{self.scheme}: {flow.name}: {changed} of {flow.sent} packets arrived "
                    f"corrupted ({example}): deliver exactly the bytes sent, or find the "
                    "damage (a checksum) and count the packet as a drop", pytrace=False)
        losses = {flow.name: self._loss(flow) for flow in flows}
        lost = "; ".join(f"{name}: {loss}" for name, loss in losses.items() if loss)
        if drops:
            reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(drops.items()))
            pytest.fail(
                f"{self.scheme}: packets lost under plain load ({lost or 'none missing'}; "
                f"{self.window} in flight), counted by the two ends as {reasons}: a link must "
                "carry traffic at its own pace without dropping; when the peer or the line "
                "falls behind, wait in send() for room (StreamLink waits up to write_timeout) "
                "instead of dropping", pytrace=False)
        if lost:
            pytest.fail(
                f"{self.scheme}: packets lost without a counted drop ({lost}): count every "
                "packet that is not delivered (self.counters.drop(reason)); a regular pattern "
                "points at the link's own code (a counter, a buffer's boundary), not the line",
                pytrace=False)
        for flow in flows:
            seen = Counter(flow.got)
            duplicated = sum(count - 1 for count in seen.values())
            assert not duplicated, \
                f"{self.scheme}: {flow.name}: {duplicated} packets arrived twice"
            if self.ordered:
                assert flow.got == flow.packets, \
                    f"{self.scheme}: {flow.name}: packets arrived out of order"

    def _loss(self, flow: Flow) -> str:
        """The packets of `flow` that did not arrive: lost among those that did, the tail that
        never arrived, and those never sent because nothing arrived for STALL seconds."""
        arrived = {index_of(packet, flow.packets) for packet in flow.got}
        between = [index for index in range(flow.newest) if index not in arrived]
        parts = [describe_loss(between, len(flow.packets))] if between else []
        if flow.sent > flow.newest + 1:
            parts.append(f"the last {flow.sent - flow.newest - 1} sent never arrived")
        if flow.sent < len(flow.packets):
            parts.append(f"{len(flow.packets) - flow.sent} not sent: nothing arrived for "
                         f"{STALL:g} s with {flow.in_flight()} in flight")
        return ", ".join(parts)

    def test_receive_keeps_its_timeout(self) -> None:
        """receive(t) with nothing to receive returns [] after about t: not much later (the
        data path would stall) and not much sooner (it would spin)."""
        with self.opened() as (a, _):
            for timeout in (0.0, 0.05, 0.2):
                took = []
                for _ in range(3):
                    started = time.monotonic()
                    got = a.receive(timeout)
                    took.append(time.monotonic() - started)
                    assert got == [], f"{self.scheme}: receive() returned {got!r} on an idle link"
                bound = 1.25 * timeout + 0.05
                assert min(took) <= bound, (
                    f"{self.scheme}: receive({timeout}) took {min(took):.3f} s with nothing to "
                    f"receive (allowed: {bound:.3f} s): wait at most `timeout` for the first "
                    "packet (poll/select with that timeout)")
                assert min(took) >= 0.8 * timeout, (
                    f"{self.scheme}: receive({timeout}) returned after {min(took):.3f} s with "
                    "nothing to receive: wait for the whole timeout, or the data path spins")

    def test_close_wakes_a_blocked_receive(self) -> None:
        with self.opened() as (a, _):
            outcome: list[object] = []

            def blocked() -> None:
                try:
                    outcome.append(a.receive(1.0))
                except BaseException as exc:
                    outcome.append(exc)

            thread = threading.Thread(target=blocked, daemon=True)
            thread.start()
            time.sleep(0.1)
            a.close()
            thread.join(3.0)
            assert not thread.is_alive(), (
                f"{self.scheme}: receive(1.0) still blocked 3 s after close(): close() must "
                "let a waiting receive() return")
            [result] = outcome
            assert result == [] or isinstance(result, LinkbridgeError), (
                f"{self.scheme}: receive() blocked during close() ended with {result!r}: "
                "return [] or raise LinkError")

    def test_close_is_final_and_releases_everything(self) -> None:
        registry = self.registry()
        with self.urls() as (url_a, url_b):
            before = open_descriptors()
            never_opened = registry.create_link(url_a)
            never_opened.close()
            never_opened.close()
            a, b = registry.create_link(url_a), registry.create_link(url_b)
            a.open()
            b.open()
            try:
                a.close()
                a.close()
                marker = b"sent after close"
                for name, use in (("send()", lambda: a.send(marker)),
                                  ("receive()", lambda: a.receive(0.0))):
                    try:
                        use()
                    except LinkbridgeError:
                        pass
                    except Exception as exc:
                        pytest.fail(f"{self.scheme}: {name} after close() raised {exc!r}: "
                                    "count a drop or raise LinkError", pytrace=False)
                assert marker not in receive_exactly(b, 1, QUIET), (
                    f"{self.scheme}: a packet sent after close() arrived: close() is final")
            finally:
                a.close()
                b.close()
            left = open_descriptors() - before
            assert left <= 0, (f"{self.scheme}: {left} descriptors still open after close() "
                               "(and use after close): close() must release everything")

    def test_reopens_after_close(self) -> None:
        with self.opened() as (a, b):
            a.close()
            a.open()
            self._carry(a, b, [b"after reopen"])
            self._carry(b, a, [b"to the reopened side"])

    def test_send_while_the_peer_is_down_never_raises(self) -> None:
        registry = self.registry()
        with self.urls() as (url_a, _):
            a = registry.create_link(url_a)
            a.open()
            try:
                for packet in payloads(6, (20, 200) * 5):
                    try:
                        send_within(self.scheme, a, [packet], self.send_limit)
                    except Exception as exc:
                        pytest.fail(f"{self.scheme}: send() raised {exc!r} while the peer was "
                                    "not open: count a drop (drops.NOT_CONNECTED) or queue it",
                                    pytrace=False)
            finally:
                a.close()

    def test_lab_pair_joins_two_sides(self) -> None:
        cls = self.registry().link_class(self.scheme)
        if not isinstance(cls, LabPairing):
            pytest.skip(f"{self.scheme}: no lab_pair(); `linkbridge lab` cannot use the link")
        with self.lab_sides() as sides, cls.lab_pair(LinkUrl(self.scheme), sides) as (ua, ub):
            assert str(ua) != str(ub), (
                f"{self.scheme}: lab_pair() gave both sides the same URL {ua}: each side needs "
                "its own end of the link (e.g. the two ends of a pipe pair, the other side's "
                "address)")
            if not self.lab_traffic:
                return
            registry = self.registry()
            a, b = registry.create_link(ua), registry.create_link(ub)
            try:
                a.open()
                b.open()
            except LinkbridgeError as exc:
                a.close()
                b.close()
                pytest.fail(f"{self.scheme}: the lab pair's links do not open side by side in "
                            f"this process: {exc}; set lab_traffic = False when they need "
                            "the lab's two network namespaces", pytrace=False)
            try:
                self._exchange(a, b)
            finally:
                a.close()
                b.close()

    def _exchange(self, a: Link, b: Link) -> None:
        """A's packet reaches B and B's reaches A, and neither hears its own."""
        a.send(b"from side A")
        b.send(b"from side B")
        got_b, got_a = receive_exactly(b, 1, 3.0), receive_exactly(a, 1, 3.0)
        assert got_b == [b"from side A"] and got_a == [b"from side B"], (
            f"{self.scheme}: lab_pair() sides do not join: A received {got_a}, B received "
            f"{got_b}: A's end must lead to B's")

    def test_mtu_is_reported_and_enforced(self) -> None:
        cls = self.registry().link_class(self.scheme)
        with self.opened() as (a, _):
            assert a.mtu is None or 1 <= a.mtu <= 65535, f"{self.scheme}: mtu {a.mtu}"
        if "mtu" not in {option.name for option in cls.options}:
            return
        limit = min(200, self.max_payload - 1)
        with self.opened(mtu=str(limit)) as (a, b):
            assert a.mtu == limit, f"{self.scheme}: the mtu option is {limit}, mtu is {a.mtu}"
            try:
                a.send(bytes(limit + 1))
            except Exception as exc:
                pytest.fail(f"{self.scheme}: send() of a packet over the mtu raised {exc!r}: "
                            "count it as drops.MTU", pytrace=False)
            named = {reason: count for reason, count in a.counters.drops.items()
                     if reason == MTU or reason.endswith(f"_{MTU}")}
            assert sum(named.values()) == 1, (
                f"{self.scheme}: a packet over the mtu must be one drop counted as drops.MTU "
                f"(or a family's <prefix>_mtu); counted: {dict(a.counters.drops)}")
            self._carry(a, b, [bytes(range(256))[:limit]])
            assert a.counters.tx_packets == 1

    def test_open_failure_is_a_link_error(self) -> None:
        with self.unopenable() as url:
            if url is None:
                pytest.skip(f"{self.scheme}: no unopenable URL given")
            link = self.registry().create_link(url)
            with pytest.raises(LinkError) as info:
                link.open()
            link.close()
            assert "\n" not in str(info.value), "errors are one line"

    def test_unknown_option_names_the_valid_ones(self) -> None:
        with self.pair() as (url_a, _), pytest.raises(ConfigError, match="valid options"):
            self.registry().create_link(with_options(url_a, {"no_such_option_x": "1"}))

    def test_bad_option_values_are_config_errors(self) -> None:
        with self.pair() as (url_a, _):
            for key, value in self.bad_options.items():
                with pytest.raises(ConfigError, match=repr(key)):
                    self.registry().create_link(with_options(url_a, {key: value}))

