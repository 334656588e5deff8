"""Reading a non-blocking file descriptor in batches, waiting in poll() only when it is empty."""

from __future__ import annotations

import select
from collections.abc import Callable

BATCH_LIMIT = 64


class BatchReader:
    """Drain up to BATCH_LIMIT packets from a non-blocking fd per call.

    `read` returns one packet, None for a datagram that was consumed but dropped, and raises
    BlockingIOError when nothing is left. poll() is only entered when the fd is empty, so a busy
    fd costs one read syscall per packet.
    """

    def __init__(self, fd: int, read: Callable[[], bytes | None]) -> None:
        self._read = read
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)

    def receive(self, timeout: float) -> list[bytes]:
        packets: list[bytes] = []
        waited = False
        while len(packets) < BATCH_LIMIT:
            try:
                packet = self._read()
            except BlockingIOError:
                if packets or waited:
                    break
                if not self._poll.poll(timeout * 1000):
                    break
                waited = True
                continue
            if packet is not None:
                packets.append(packet)
        return packets
