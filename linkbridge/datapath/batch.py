"""Reading a non-blocking file descriptor in batches, waiting in poll() only when it is empty."""

from __future__ import annotations

import contextlib
import select
from collections.abc import Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")

BATCH_LIMIT = 64  # packets one receive() returns at the most
READ_SIZE = 65536  # bytes one read takes: any IP packet or UDP datagram (at most 65535) fits


class BatchReader(Generic[Item]):
    """Drain up to `limit` items (BATCH_LIMIT packets) from a non-blocking fd per call.

    `read` appends what one read system call yields to the list it is given (nothing for a
    datagram that was dropped, several packets for a coalesced one) and raises BlockingIOError
    when nothing is left. poll() waits only while the fd is empty and `timeout` is positive. A
    lone packet is returned at once (after a wait, or when poll(0) shows nothing more queued): it
    is on its way without a failed read, whose exception costs more than the poll. Queued
    packets are read back to back, one read system call each, until the fd is empty.
    """

    def __init__(self, fd: int, read: Callable[[list[Item]], None],
                 limit: int = BATCH_LIMIT) -> None:
        self._read = read
        self._limit = limit
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)

    def receive(self, timeout: float) -> list[Item]:
        packets: list[Item] = []
        waited = False
        while not packets:
            try:
                self._read(packets)
            except BlockingIOError:
                if waited or timeout <= 0 or not self._poll.poll(timeout * 1000):
                    return packets
                waited = True
        if waited or not self._poll.poll(0):
            return packets
        with contextlib.suppress(BlockingIOError):
            while len(packets) < self._limit:
                self._read(packets)
        return packets
