"""Recording the packets that cross a tunnel in pcap format (LINKTYPE_RAW: bare IPv4/IPv6).

`PcapWriter` writes the classic pcap file format (microsecond timestamps) that tcpdump and
Wireshark read; `PcapTap` wraps the tunnel's endpoint and records what it reads from the device
(towards the link) and what it writes into it (from the link, after validation).
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import time
from collections.abc import Callable
from typing import BinaryIO

from linkbridge.datapath.counters import Counters
from linkbridge.datapath.endpoint import Endpoint, Pollable
from linkbridge.errors import ConfigError

log = logging.getLogger("linkbridge")

MAGIC = 0xA1B2C3D4  # microsecond timestamps
VERSION = (2, 4)
LINKTYPE_RAW = 101
SNAPLEN = 65535
DEFAULT_LIMIT = 100 * 1024 * 1024  # bytes of file, then recording stops (the tunnel goes on)
FILE_HEADER = struct.Struct("<IHHiIII")
RECORD_HEADER = struct.Struct("<IIII")


def file_header(snaplen: int = SNAPLEN) -> bytes:
    """The 24-byte pcap global header for raw IP packets."""
    return FILE_HEADER.pack(MAGIC, *VERSION, 0, 0, snaplen, LINKTYPE_RAW)


def record(packet: bytes, timestamp: float, snaplen: int = SNAPLEN) -> bytes:
    """One pcap record: header (time, captured and original length) and the packet."""
    seconds = int(timestamp)
    micros = min(999_999, round((timestamp - seconds) * 1_000_000))
    data = packet[:snaplen]
    return RECORD_HEADER.pack(seconds, micros, len(data), len(packet)) + data


class PcapWriter:
    """Appends records to a pcap file until `limit` bytes; thread-safe; flushed on close."""

    def __init__(self, stream: BinaryIO, limit: int = DEFAULT_LIMIT,
                 clock: Callable[[], float] = time.time) -> None:
        self._stream = stream
        self._limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        self._stream.write(file_header())
        self.written = FILE_HEADER.size
        self.packets = 0
        self.skipped = 0

    @classmethod
    def create(cls, path: str, limit: int = DEFAULT_LIMIT) -> PcapWriter:
        """Create (or truncate) `path`, readable by its owner only: it holds traffic."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise ConfigError(f"cannot write --pcap file {path!r}: {exc.strerror}") from None
        return cls(os.fdopen(fd, "wb"), limit)

    def write(self, packet: bytes) -> None:
        data = record(packet, self._clock())
        with self._lock:
            if self._stream.closed or self.written + len(data) > self._limit:
                if self.skipped == 0 and not self._stream.closed:
                    log.warning("pcap file reached its limit of %d bytes; recording stopped",
                                self._limit)
                self.skipped += 1
                return
            self._stream.write(data)
            self.written += len(data)
            self.packets += 1

    def flush(self) -> None:
        with self._lock:
            if not self._stream.closed:
                self._stream.flush()

    def close(self) -> None:
        with self._lock:
            if not self._stream.closed:
                self._stream.close()


class PcapTap:
    """An Endpoint that records every packet through `below` before passing it on.

    It offers none of `below`'s capabilities (endpoint.py) by itself, so no packet bypasses
    the recording; pcap_tap() gives it the one it can honour, Pollable.
    """

    def __init__(self, below: Endpoint, writer: PcapWriter) -> None:
        self.below = below
        self.writer = writer
        self.name: str = below.name
        self.counters: Counters = below.counters

    def receive(self, timeout: float) -> list[bytes]:
        packets = self.below.receive(timeout)
        for packet in packets:
            self.writer.write(packet)
        return packets

    def send(self, packet: bytes) -> None:
        self.writer.write(packet)
        self.below.send(packet)

    def close(self) -> None:
        self.below.close()


class PollablePcapTap(PcapTap):
    """A PcapTap over a Pollable endpoint: the data path still polls the descriptor below."""

    def fileno(self) -> int:
        below = self.below
        assert isinstance(below, Pollable)  # as pcap_tap() chose
        return below.fileno()


def pcap_tap(below: Endpoint, writer: PcapWriter) -> PcapTap:
    """`below` recorded into `writer`, pollable where `below` is."""
    return (PollablePcapTap if isinstance(below, Pollable) else PcapTap)(below, writer)
