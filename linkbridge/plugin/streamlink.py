"""StreamLink: the base class for links over a byte stream (a pipe, a socket, a tty).

A subclass only opens the stream and hands its descriptors to `attach()`; framing, paced
writes, counted drops, timeouts, and a close() that wakes a blocked receive() are done here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from linkbridge.errors import LinkError
from linkbridge.framing import length_prefix, slip
from linkbridge.framing.events import Lost
from linkbridge.plugin.link import Link, ReportsLoss
from linkbridge.wire import drops

log = logging.getLogger(__name__)

READ_SIZE = 256 * 1024


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


class StreamLink(ReportsLoss, Link):
    """A link over a byte stream. Subclasses implement `open()`, which opens the stream and
    ends with `self.attach(reader_fd, writer_fd)` (one descriptor for both: a socket, a tty).

    `send()` frames the packet (`framing`: a 2-byte length prefix by default, `SLIP_FRAMING`
    for serial-like lines) and writes it whole, waiting up to `write_timeout` seconds for room:
    a slow peer slows the sender down instead of losing packets; what still cannot be sent is a
    counted drop. `receive()` waits on the stream and returns the packets completed. When the
    stream ends (the peer hung up, an I/O error, a stream out of step) `stream_ended(reason)`
    is called on the receiving thread: by default it raises LinkError, which ends the tunnel;
    override it to reconnect (call `self.open()` again). `close()` wakes a blocked `receive()`
    or `send()`; `open()` after `close()` attaches a new stream. `mtu` is the link's `mtu`
    option when it declares one, else the framing's largest packet.
    """

    framing: ClassVar[Framing] = LENGTH_FRAMING
    write_timeout: ClassVar[float] = 2.0

    def __init__(self, target: str, options: Mapping[str, Any]) -> None:
        super().__init__(target, options)
        self._reader = self._writer = self._wake = -1
        self._read_lock = threading.RLock()
        self._write_lock = threading.RLock()
        self._decoder: StreamDecoder | None = None
        self._ended: str | None = None
        self._closed = True

    @property
    def mtu(self) -> int | None:
        value: int | None = self.config.get("mtu")
        return self.framing.max_packet if value is None else value

    def attach(self, reader: int, writer: int | None = None) -> None:
        """Take over the stream's descriptors (the link closes them); `writer` defaults to
        `reader`. Both are made non-blocking."""
        writer = reader if writer is None else writer
        for fd in {reader, writer}:
            os.set_blocking(fd, False)
        with self._read_lock, self._write_lock:
            self._release()
            self._reader, self._writer = reader, writer
            self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self._decoder = self.framing.decoder(self.mtu or self.framing.max_packet,
                                                 self.counters.drops)
            self._ended = None
            self._closed = False

    def fileno(self) -> int:
        """The stream's read descriptor, for the data path's shared poll."""
        if self._reader < 0:
            raise LinkError(f"{self.name}: link is not open")
        return self._reader

    def send(self, packet: bytes) -> None:
        if not packet or len(packet) > (self.mtu or self.framing.max_packet):
            self.counters.drop(drops.MTU if packet else drops.EMPTY)
            return
        frame = self.framing.encode(packet)
        with self._write_lock:
            if self._closed or self._ended is not None:
                self.counters.drop(drops.NOT_CONNECTED)
                return
            try:
                written = self._write_all(frame)
            except OSError as exc:
                self.counters.drop(drops.SEND_ERROR)
                self._end(f"write failed: {exc.strerror}")
                return
        if written == len(frame):
            self.counters.sent(len(packet))
            return
        self.counters.drop(drops.NOT_CONNECTED if self._closed else drops.WRITE_TIMEOUT)
        if written and not self.framing.resyncs:
            self._end(f"a frame was written only in part (no room for {self.write_timeout} s)")

    def _write_all(self, data: bytes) -> int:
        """Write `data`, waiting for room up to `write_timeout`; return the bytes written."""
        view = memoryview(data)
        deadline = time.monotonic() + self.write_timeout
        poller = select.poll()
        poller.register(self._writer, select.POLLOUT)
        poller.register(self._wake, select.POLLIN)
        while view:
            with contextlib.suppress(BlockingIOError):
                view = view[os.write(self._writer, view):]
            left = deadline - time.monotonic()
            if not view or left <= 0 or self._closed:
                break
            poller.poll(left * 1000)
        return len(data) - len(view)

    def receive(self, timeout: float) -> list[bytes]:
        with self._read_lock:
            if self._closed:
                raise LinkError(f"{self.name}: link is closed")
            if self._ended is not None:
                self.stream_ended(self._ended)
                return []
            poller = select.poll()
            poller.register(self._reader, select.POLLIN)
            poller.register(self._wake, select.POLLIN)
            if not poller.poll(max(0.0, timeout) * 1000) or self._closed:
                return []
            try:
                data = os.read(self._reader, READ_SIZE)
            except (BlockingIOError, InterruptedError):
                return []
            except OSError as exc:
                self._end(f"read failed: {exc.strerror}")
                return []
            if not data:
                self._end("the peer closed the stream")
                return []
            assert self._decoder is not None
            try:
                packets = self.report_loss(self._decoder.feed(data))
            except length_prefix.FramingError as exc:
                self.counters.drop(drops.MALFORMED_FRAME)
                self._end(str(exc))
                return []
        for packet in packets:
            self.counters.received(len(packet))
        return packets

    def _end(self, reason: str) -> None:
        if self._ended is None:
            self._ended = reason
            log.info("%s: stream ended: %s", self.name, reason)

    def stream_ended(self, reason: str) -> None:
        """Called by receive() once the stream has ended: raise LinkError (the default, which
        stops the tunnel) or reconnect by calling `self.open()`."""
        raise LinkError(f"{self.name}: {reason}")

    def close(self) -> None:
        if self._wake >= 0 and not self._closed:
            self._closed = True
            with contextlib.suppress(OSError):
                os.eventfd_write(self._wake, 1)  # wakes a receive() or send() waiting now
        with self._read_lock, self._write_lock:
            self._closed = True
            self._release()

    def _release(self) -> None:
        """Close the descriptors (the caller holds both locks)."""
        for fd in {self._reader, self._writer, self._wake} - {-1}:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._reader = self._writer = self._wake = -1
