"""StreamLink: the one link over a byte stream (a tty, a TCP connection, a pipe) that reconnects.

A subclass is an opener (`open_stream()`: a serial device, a socket, a pipe...) and a framing
codec; this class does the rest: paced writes within a deadline, counted drops, fd-safe waiting
(poll, never select), a close() that wakes a blocked receive() or send(), and reconnecting: when
the stream is lost it logs once, counts what is sent meanwhile, reopens with backoff (the pure
policy of linkbridge.wire.backoff, on the link's `clock`) and runs `on_open()` again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from linkbridge.errors import LinkError
from linkbridge.framing import length_prefix, slip
from linkbridge.framing.events import Lost
from linkbridge.plugin.link import Link, ReportsLoss
from linkbridge.wire import drops
from linkbridge.wire.backoff import Backoff

log = logging.getLogger("linkbridge.stream")

READ_SIZE = 256 * 1024
FIRST_RETRY = 0.05  # seconds before the first reopen attempt after the stream was lost
MAX_RETRY = 1.0  # the backoff between reopen attempts never grows past this


class StreamDecoder(Protocol):
    """What a framing's decoder does: bytes in, whole frames and `Lost` marks out
    (`FramingError` of length_prefix when the stream cannot be decoded any more)."""

    def feed(self, data: bytes) -> Sequence[bytes | Lost]: ...


@dataclass(frozen=True)
class Framing:
    """How packets are cut out of a byte stream: `encode(packet)` -> bytes, and
    `decoder(max_frame, errors)` -> a decoder counting its drops in `errors`. `resyncs`: the
    decoder finds the next frame after a damaged one (SLIP does; a length prefix does not, so
    after a frame written only in part the stream has to be reset)."""

    encode: Callable[[bytes], bytes]
    decoder: Callable[[int, Counter[str]], StreamDecoder]
    resyncs: bool
    max_packet: int = length_prefix.MAX_PACKET


LENGTH_FRAMING = Framing(length_prefix.encode, length_prefix.LengthDecoder, resyncs=False)
SLIP_FRAMING = Framing(slip.encode, slip.SlipDecoder, resyncs=True)


class _Handle(Protocol):
    def fileno(self) -> int: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Stream:
    """An open byte stream, as `open_stream()` returns it: the descriptor read, the one written
    (-1: the same, as for a socket or a tty), and what closes it (by default: closing the
    descriptors). The link makes the descriptors non-blocking."""

    reader: int
    writer: int = -1
    close: Callable[[], None] | None = None

    @classmethod
    def of(cls, handle: _Handle) -> Stream:
        """The stream of an object with fileno() and close(): a socket, a pyserial port."""
        return cls(handle.fileno(), close=handle.close)

    def release(self) -> None:
        if self.close is not None:
            with contextlib.suppress(Exception):  # closing a failed stream may fail too
                self.close()
            return
        for fd in {self.reader, self.writer} - {-1}:
            with contextlib.suppress(OSError):
                os.close(fd)


def os_reason(exc: BaseException) -> str:
    """A short reason for an opener's failure (pyserial wraps errno in SerialException)."""
    number = getattr(exc, "errno", None)
    return os.strerror(number) if isinstance(number, int) else str(exc) or type(exc).__name__


class _State:
    """StreamLink's own state, kept under one private name so that a subclass's attributes
    (`_closed`, `_reader`...) cannot clash with it."""

    def __init__(self, backoff: Backoff, hold: int) -> None:
        self.stream: Stream | None = None
        self.writer = -1
        self.wake = -1  # an eventfd: close() and a lost stream wake a waiting receive()
        self.decoder: StreamDecoder | None = None
        self.read_lock = threading.Lock()
        self.write_lock = threading.RLock()  # on_open() writes while the reopen holds it
        self.open_lock = threading.Lock()  # one reopen at a time (receive, or a send)
        self.closed = True
        self.lost: str | None = None  # why the stream is down; None while it is up
        self.lost_at = 0.0
        self.backoff = backoff
        self.held: deque[tuple[bytes, int]] = deque(maxlen=hold)  # (frame, packet size)


class StreamLink(ReportsLoss, Link):
    """A link over a byte stream from `open_stream()`; see the module docstring.

    Settings a subclass may change (class attributes, or instance attributes set in
    `__init__`):
    - `framing`: a 2-byte length prefix by default, `SLIP_FRAMING`, or any `Framing`;
    - `write_timeout`: seconds a send waits for room before it is a `write_timeout` drop;
    - `reconnects`: False makes a lost stream end the tunnel (LinkError) instead;
    - `wait_for_peer`: a first open that fails is retried like a lost stream instead of
      failing `open()`;
    - `lost_drop`: what a send counts while the stream is down (`not_connected`);
    - `hold`: how many packets sent while it is down are kept and sent once it is up (the
      oldest gives way, counted); 0: each is a counted drop;
    - `open_on_send`: a send while the stream is down tries the opener first (for an opener
      that never blocks, e.g. accepting a peer that is waiting);
    - `stream_kind`: what the log calls the stream ("device", "connection");
    - `first_retry`, `max_retry`: the backoff (read by open()); `clock`: time.monotonic.
    """

    framing: Framing = LENGTH_FRAMING
    write_timeout: float = 2.0
    reconnects: bool = True
    wait_for_peer: bool = False
    lost_drop: str = drops.NOT_CONNECTED
    stream_kind: ClassVar[str] = "stream"
    open_on_send: bool = False
    hold: ClassVar[int] = 0
    first_retry: float = FIRST_RETRY
    max_retry: float = MAX_RETRY
    clock: Callable[[], float] = time.monotonic

    def __init__(self, target: str, options: Mapping[str, Any]) -> None:
        super().__init__(target, options)
        self.__state = _State(Backoff(FIRST_RETRY, MAX_RETRY), self.hold)

    # --- what a subclass provides ------------------------------------------------------------

    def open_stream(self) -> Stream:
        """The opener: open the stream (a device, a connection) and return it; raise any
        exception when it cannot be opened now (its errno or text becomes the reason)."""
        raise NotImplementedError(f"{type(self).__name__} must implement open_stream()")

    def on_open(self) -> None:
        """Called after every (re)open, before any packet: send set-up bytes with `write()`."""

    def unwrap(self, frame: bytes) -> bytes | None:
        """A frame the decoder cut out -> the packet to deliver, or None when it is not one
        (count the drop here). By default the frame is the packet."""
        return frame

    # --- state --------------------------------------------------------------------------------

    @property
    def mtu(self) -> int | None:
        value: int | None = self.config.get("mtu")
        return self.framing.max_packet if value is None else value

    @property
    def connected(self) -> bool:
        """Whether the stream is open and not lost."""
        state = self.__state
        return state.stream is not None and state.lost is None and not state.closed

    def open(self) -> None:
        state = self.__state
        with state.read_lock, state.write_lock:
            self.__release()
            state.wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            state.closed, state.lost = False, None
            state.backoff = Backoff(self.first_retry, self.max_retry)
        try:
            stream = self.open_stream()
        except Exception as exc:  # any opener failure is the stream's trouble
            reason = os_reason(exc)
            if not self.wait_for_peer:
                self.close()
                raise LinkError(f"{self.name}: cannot open {self.target}: {reason}") from None
            log.warning("%s: cannot open %s yet (%s); waiting for it with backoff",
                        self.name, self.target, reason)
            with state.write_lock:
                state.lost, state.lost_at = reason, self.clock()
                state.backoff.failed(state.lost_at)
            return
        with state.read_lock:
            self.__start(stream)

    # --- sending ------------------------------------------------------------------------------

    def send(self, packet: bytes) -> None:
        self.send_with(packet, self.framing.encode)

    def send_with(self, packet: bytes, encode: Callable[[bytes], bytes]) -> None:
        """send() with another encoder for this packet (an addressed link's frame to one
        station): the same checks, counters, drops and holding."""
        if not packet or len(packet) > (self.mtu or self.framing.max_packet):
            self.counters.drop(drops.MTU if packet else drops.EMPTY)
            return
        frame = encode(packet)
        reason = self.write(frame)
        if reason is None:
            self.counters.sent(len(packet))
        elif reason == self.lost_drop and self.hold:
            self.__keep(frame, len(packet))
        else:
            self.counters.drop(reason)

    def __keep(self, frame: bytes, size: int) -> None:
        """Hold a frame sent while the stream is down (the oldest held is then a drop)."""
        state = self.__state
        with state.write_lock:
            if state.lost is None and state.stream is not None:  # it came up meanwhile
                self.__flush([(frame, size)])
                return
            if len(state.held) == state.held.maxlen:
                self.counters.drop(self.lost_drop)
            state.held.append((frame, size))

    def __flush(self, frames: list[tuple[bytes, int]]) -> None:
        for frame, size in frames:
            reason = self.write(frame)
            if reason is None:
                self.counters.sent(size)
            else:
                self.counters.drop(reason)

    def write(self, data: bytes) -> str | None:
        """Write `data` whole as it is (a frame, set-up bytes, a reply), waiting for room up to
        `write_timeout`: None when it went out, else the drop reason to count."""
        state = self.__state
        with state.write_lock:
            if state.closed:
                return drops.NOT_CONNECTED
            if state.stream is None and self.open_on_send and state.open_lock.acquire(False):
                try:  # the reading thread is not using a stream now: this thread may open one
                    self.__try_open()
                finally:
                    state.open_lock.release()
            if state.stream is None or state.lost is not None:
                return self.lost_drop
            try:
                written = self.__write_all(data)
            except OSError as exc:
                self.__lose(f"write failed: {os_reason(exc)}")
                return self.lost_drop
            if written == len(data):
                return None
            if state.closed:
                return drops.NOT_CONNECTED
            if written and not self.framing.resyncs:
                self.__lose(f"a frame was written only in part (no room for "
                           f"{self.write_timeout:g} s)")
        return drops.WRITE_TIMEOUT

    def __write_all(self, data: bytes) -> int:
        """Write `data`, waiting for room up to `write_timeout`; return the bytes written."""
        state = self.__state
        view = memoryview(data)
        deadline = self.clock() + self.write_timeout
        poller = select.poll()  # not select(): descriptors may be numbered past 1023
        poller.register(state.writer, select.POLLOUT)
        poller.register(state.wake, select.POLLIN)
        while view:
            with contextlib.suppress(BlockingIOError):
                view = view[os.write(state.writer, view):]
            left = deadline - self.clock()
            if not view or left <= 0 or state.closed:
                break
            poller.poll(left * 1000)
        return len(data) - len(view)

    # --- receiving ----------------------------------------------------------------------------

    def receive(self, timeout: float) -> list[bytes]:
        state = self.__state
        deadline = self.clock() + max(0.0, timeout)
        with state.read_lock:
            if state.closed:
                raise LinkError(f"{self.name}: link is closed")
            while state.lost is not None:  # reopen (with backoff) within the timeout
                if not self.reconnects:
                    raise LinkError(f"{self.name}: {state.lost}")
                self.__reopen(deadline - self.clock())
                if state.closed or (state.lost is not None and self.clock() >= deadline):
                    return []
            assert state.stream is not None
            reader = state.stream.reader
            poller = select.poll()
            poller.register(reader, select.POLLIN)
            poller.register(state.wake, select.POLLIN)
            if not poller.poll(max(0.0, deadline - self.clock()) * 1000) or state.closed:
                return []
            try:
                data = os.read(reader, READ_SIZE)
            except (BlockingIOError, InterruptedError):
                return []
            except OSError as exc:
                self.__lose(f"read failed: {os_reason(exc)}")
                return []
            if not data:
                self.__lose("the peer closed the stream")
                return []
            return self.__decode(data)

    def __decode(self, data: bytes) -> list[bytes]:
        """The packets completed by `data` (the one place frames are decoded)."""
        state = self.__state
        assert state.decoder is not None
        try:
            frames = self.report_loss(state.decoder.feed(data))
        except length_prefix.FramingError as exc:
            self.counters.drop(drops.MALFORMED_FRAME)
            self.__lose(str(exc))
            return []
        packets = []
        for frame in frames:
            packet = self.unwrap(frame)
            if packet is not None:
                self.counters.received(len(packet))
                packets.append(packet)
        return packets

    # --- losing and reopening -------------------------------------------------------------

    def __lose(self, reason: str) -> None:
        """Either direction saw the stream fail: mark it lost and log once."""
        state = self.__state
        with state.write_lock:
            if state.lost is not None or state.closed:
                return
            state.lost, state.lost_at = reason, self.clock()
            state.backoff.reset()
            state.backoff.failed(state.lost_at)
            with contextlib.suppress(OSError):
                os.eventfd_write(state.wake, 1)  # a receive() waiting on the stream sees it
        if self.reconnects:
            log.warning("%s: %s lost (%s); the tunnel stays up, reopening %s with backoff",
                        self.name, self.stream_kind, reason, self.target)
        else:
            log.info("%s: stream ended: %s", self.name, reason)

    def __reopen(self, timeout: float) -> None:
        """(Reading thread.) Drop the lost stream; open it again once the backoff allows."""
        state = self.__state
        with state.write_lock:
            if state.stream is not None:
                state.stream.release()
                state.stream, state.writer = None, -1
        wait = state.backoff.wait(self.clock())
        if wait > 0:
            self.__pause(min(timeout, wait))
            return
        with state.open_lock:
            self.__try_open()

    def __try_open(self) -> None:
        """(Caller holds the open lock, and no thread uses a stream.) One reopen attempt."""
        state = self.__state
        if state.lost is None or state.closed:
            return  # the other thread opened it meanwhile
        try:
            stream = self.open_stream()
        except Exception as exc:  # the device or the peer is still away
            log.debug("%s: reopen failed: %s", self.name, os_reason(exc))
            state.backoff.failed(self.clock())
            return
        if state.closed:
            stream.release()
            return
        away = self.clock() - state.lost_at
        self.__start(stream)
        log.warning("%s: %s back after %.1f s, traffic resumes", self.name, self.stream_kind,
                    away)

    def __pause(self, seconds: float) -> None:
        """Wait `seconds`, or less when close() (or a lost stream) wakes the link."""
        wake = self.__state.wake
        poller = select.poll()
        poller.register(wake, select.POLLIN)
        if poller.poll(max(0.0, seconds) * 1000):
            with contextlib.suppress(OSError):
                os.eventfd_read(wake)

    def __start(self, stream: Stream) -> None:
        """(No thread uses a stream now.) Use a freshly opened stream, then run on_open()."""
        state = self.__state
        writer = stream.reader if stream.writer < 0 else stream.writer
        for fd in {stream.reader, writer}:
            os.set_blocking(fd, False)
        with state.write_lock:
            if state.wake >= 0:
                with contextlib.suppress(BlockingIOError):
                    os.eventfd_read(state.wake)  # a wake-up for the old stream is spent
            state.stream, state.writer = stream, writer
            state.decoder = self.framing.decoder(self.mtu or self.framing.max_packet,
                                                 self.counters.drops)
            state.lost = None
            state.backoff.reset()
            self.on_open()
            held = list(state.held)
            state.held.clear()
            self.__flush(held)

    # --- closing ------------------------------------------------------------------------------

    def close(self) -> None:
        state = self.__state
        if state.wake >= 0 and not state.closed:
            state.closed = True
            with contextlib.suppress(OSError):
                os.eventfd_write(state.wake, 1)  # wakes a receive() or send() waiting now
        with state.read_lock, state.write_lock:
            state.closed = True
            self.__release()

    def __release(self) -> None:
        """(Caller holds both locks.) Close the stream and the wake-up descriptor."""
        state = self.__state
        if state.stream is not None:
            state.stream.release()
        if state.wake >= 0:
            with contextlib.suppress(OSError):
                os.close(state.wake)
        state.stream, state.writer, state.wake = None, -1, -1
        for _frame in state.held:
            self.counters.drop(drops.NOT_CONNECTED)
        state.held.clear()
