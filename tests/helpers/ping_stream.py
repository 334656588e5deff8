"""Pings that run in a thread while a test does something to the tunnel they cross."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from linkbridge.lab.probes import PingResult, ping


@contextlib.contextmanager
def ping_stream(ns_name: str, destination: str, count: int, interval: float,
                timeout: float = 1.0) -> Iterator[list[PingResult]]:
    """`count` pings from `ns_name` every `interval` s, started as the block starts; the list
    holds their result once the block has ended (it waits for the last ping)."""
    result: list[PingResult] = []
    stream = threading.Thread(target=lambda: result.append(
        ping(ns_name, destination, count=count, interval=interval, timeout=timeout)))
    stream.start()
    try:
        yield result
    finally:
        stream.join()
