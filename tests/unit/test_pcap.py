"""The pcap writer and tap: file format, record layout, size limit, both directions."""

from __future__ import annotations

import io
import struct

from linkbridge.datapath.pcap import (
    FILE_HEADER,
    LINKTYPE_RAW,
    RECORD_HEADER,
    PcapWriter,
    pcap_tap,
    record,
)
from linkbridge.testing import PollableMemoryEndpoint

PING = bytes.fromhex("4500001c00010000400100000a0000010a000002") + bytes(8)


def records(data: bytes) -> list[tuple[int, int, bytes]]:
    """(seconds, microseconds, packet) of every record after the global header."""
    found, offset = [], FILE_HEADER.size
    while offset < len(data):
        seconds, micros, captured, original = RECORD_HEADER.unpack_from(data, offset)
        offset += RECORD_HEADER.size
        assert captured == original
        found.append((seconds, micros, data[offset:offset + captured]))
        offset += captured
    return found


def test_global_header_is_raw_ip_microseconds() -> None:
    stream = io.BytesIO()
    PcapWriter(stream, clock=lambda: 0.0)
    magic, major, minor, zone, sigfigs, snaplen, linktype = FILE_HEADER.unpack(stream.getvalue())
    assert (magic, major, minor, zone, sigfigs) == (0xA1B2C3D4, 2, 4, 0, 0)
    assert (snaplen, linktype) == (65535, LINKTYPE_RAW)


def test_records_carry_time_and_packet() -> None:
    stream = io.BytesIO()
    times = iter([1700000000.25, 1700000001.999999])
    writer = PcapWriter(stream, clock=lambda: next(times))
    writer.write(PING)
    writer.write(b"\x60" + bytes(39))
    assert records(stream.getvalue()) == [(1700000000, 250000, PING),
                                          (1700000001, 999999, b"\x60" + bytes(39))]
    assert writer.packets == 2


def test_snaplen_truncates_but_keeps_original_length() -> None:
    data = record(bytes(100), 1.5, snaplen=10)
    assert struct.unpack_from("<IIII", data) == (1, 500000, 10, 100)
    assert len(data) == RECORD_HEADER.size + 10


def test_limit_stops_recording_without_breaking_the_file() -> None:
    stream = io.BytesIO()
    limit = FILE_HEADER.size + 2 * (RECORD_HEADER.size + len(PING))
    writer = PcapWriter(stream, limit=limit, clock=lambda: 0.0)
    for _ in range(5):
        writer.write(PING)
    assert len(stream.getvalue()) == limit
    assert len(records(stream.getvalue())) == 2
    assert writer.skipped == 3


def test_tap_records_both_directions_and_delegates() -> None:
    stream = io.BytesIO()
    inner = PollableMemoryEndpoint("q")
    inner.feed(b"out1", b"out2")
    tap = pcap_tap(inner, PcapWriter(stream, clock=lambda: 0.0))
    assert tap.receive(0) == [b"out1", b"out2"]
    tap.send(b"in1")
    assert inner.sent == [b"in1"]
    assert [packet for _, _, packet in records(stream.getvalue())] == [b"out1", b"out2", b"in1"]
    assert tap.counters is inner.counters
    assert tap.fileno() == inner.fileno()  # the data path still polls the device itself
    tap.close()
    assert inner.closed


def test_close_flushes_and_later_writes_are_ignored() -> None:
    stream = io.BytesIO()
    writer = PcapWriter(stream, clock=lambda: 0.0)
    writer.close()
    writer.write(PING)  # a late packet from a stopping thread
    assert stream.closed
