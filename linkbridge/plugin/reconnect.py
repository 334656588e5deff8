"""A byte stream that comes back: a serial device or a TCP server, reopened with backoff.

`ReconnectingStream` owns one descriptor-backed handle (a pyserial port, a socket) from an
`opener`. When a read or write fails, or the far end hangs up, it logs once, reports writes
as the `lost_drop` reason meanwhile (`unplugged` for a device, `not_connected` for a server),
and the reading thread reopens it with backoff (0.05 s doubling up to `max_retry`); every
(re)open calls `on_open` with a writer, so a link can send its set-up bytes (a TNC's
parameters) again. The tunnel never exits for that.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from collections.abc import Callable
from typing import Protocol

from linkbridge.errors import LinkError
from linkbridge.plugin.serialport import os_reason, write_all
from linkbridge.wire import drops

log = logging.getLogger("linkbridge.stream")

READ_SIZE = 65536
FIRST_RETRY = 0.05  # seconds before the first reopen attempt
MAX_RETRY = 1.0  # the backoff between reopen attempts never grows past this (by default)


class StreamHandle(Protocol):
    """What an opener returns: something with a non-blocking descriptor that can be closed."""

    def fileno(self) -> int: ...

    def close(self) -> None: ...


class ReconnectingStream:
    """Reads and writes bytes on a handle from `opener`, reopening it when it fails.

    `opener()` returns a handle or raises (any exception, described with `os_reason`).
    `name` and `target` label log lines and errors. With `wait_for_peer`, a first open that
    fails is retried like a lost connection (a TNC not up yet) instead of failing `open()`.
    """

    def __init__(self, name: str, target: str, opener: Callable[[], StreamHandle],
                 on_open: Callable[[Callable[[bytes], None]], None] | None = None,
                 *, wait_for_peer: bool = False, max_retry: float = MAX_RETRY,
                 write_timeout: float = 1.0, lost_drop: str = drops.UNPLUGGED) -> None:
        self.name, self.target = name, target
        self._opener = opener
        self._on_open = on_open
        self._wait_for_peer = wait_for_peer
        self._max_retry = max_retry
        self.write_timeout = write_timeout
        self.lost_drop = lost_drop
        self._handle: StreamHandle | None = None
        self._lock = threading.Lock()  # guards _handle and writes
        self._lost = threading.Event()
        self._closed = False
        self._lost_at = 0.0
        self._retry_at = 0.0
        self._retry_delay = FIRST_RETRY

    @property
    def connected(self) -> bool:
        return self._handle is not None and not self._lost.is_set()

    def open(self) -> None:
        """Open the handle; raise LinkError on failure unless waiting for the peer."""
        try:
            handle = self._opener()
        except Exception as exc:  # any opener failure is the stream's trouble
            if not self._wait_for_peer:
                raise LinkError(f"{self.name}: cannot open {self.target}: "
                                f"{os_reason(exc)}") from None
            log.warning("%s: %s not reachable yet (%s); retrying with backoff", self.name,
                        self.target, os_reason(exc))
            with self._lock:
                self._mark_lost()
            return
        self._start(handle)

    def _start(self, handle: StreamHandle) -> None:
        with self._lock:
            self._handle = handle
            self._lost.clear()
        if self._on_open is not None:
            self._on_open(self._write_setup)

    def _write_setup(self, data: bytes) -> None:
        """Set-up bytes from `on_open`: written like data, a failure marks the stream lost."""
        self.write(data)

    def write(self, data: bytes) -> str | None:
        """Write `data` whole; None when it went out, else the drop reason to count."""
        with self._lock:
            handle = self._handle
            if handle is None or self._lost.is_set():
                return self.lost_drop
            try:
                written = write_all(handle.fileno(), data, self.write_timeout)
            except (OSError, ValueError) as exc:
                self._lose(os_reason(exc))
                return self.lost_drop
        return None if written else drops.WRITE_TIMEOUT

    def read(self, timeout: float) -> bytes:
        """Bytes that arrived within `timeout` (maybe none); reopens a lost stream meanwhile."""
        handle = self._handle
        if self._closed:
            raise LinkError(f"{self.name}: closed")
        if handle is None or self._lost.is_set():
            self._reopen(timeout)
            return b""
        try:
            poller = select.poll()  # not select(): descriptors may be numbered past 1023
            poller.register(handle.fileno(), select.POLLIN)
            if not poller.poll(timeout * 1000):
                return b""
            data = os.read(handle.fileno(), READ_SIZE)
        except BlockingIOError:
            return b""
        except (OSError, ValueError) as exc:
            with self._lock:
                self._lose(os_reason(exc))
            return b""
        if not data:  # readable yet empty: the far end hung up
            with self._lock:
                self._lose("hung up")
        return data

    def _mark_lost(self) -> None:
        """(Caller holds the lock.) Lost: the reading thread retries after the backoff."""
        self._lost_at = time.monotonic()
        self._retry_at = self._lost_at + FIRST_RETRY
        self._retry_delay = FIRST_RETRY
        self._lost.set()

    def _lose(self, reason: str) -> None:
        """(Caller holds the lock.) Either direction saw the stream fail: log once."""
        if self._lost.is_set() or self._closed:
            return
        self._mark_lost()
        log.warning("%s: %s lost (%s); the tunnel stays up, reconnecting with backoff",
                    self.name, self.target, reason)

    def _reopen(self, timeout: float) -> None:
        """Close the failed handle and open it again once the backoff allows."""
        with self._lock:
            if self._handle is not None:
                with contextlib.suppress(Exception):
                    self._handle.close()
                self._handle = None
        now = time.monotonic()
        if now < self._retry_at:
            time.sleep(min(timeout, self._retry_at - now))
            return
        try:
            handle = self._opener()
        except Exception as exc:  # the device or server is still away
            log.debug("%s: reopen failed: %s", self.name, os_reason(exc))
            self._retry_at = time.monotonic() + self._retry_delay
            self._retry_delay = min(2 * self._retry_delay, self._max_retry)
            return
        if self._closed:
            handle.close()
            return
        self._start(handle)
        log.warning("%s: %s back after %.1f s, traffic resumes", self.name, self.target,
                    time.monotonic() - self._lost_at)

    def close(self) -> None:
        """Release the handle (idempotent); later reads raise LinkError, writes are drops."""
        with self._lock:
            self._closed = True
            self._lost.set()
            if self._handle is not None:
                with contextlib.suppress(Exception):
                    self._handle.close()
                self._handle = None
