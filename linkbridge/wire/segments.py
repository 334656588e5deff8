"""Grouping packets for UDP segmentation offload (GSO) and splitting coalesced reads (GRO). Pure.

With the UDP_SEGMENT socket option one send carries a run of datagrams: every one the same size
except the last, which may be shorter; the kernel (or the NIC) cuts it back into those datagrams,
so the peer receives exactly what separate sends would have delivered. With UDP_GRO a read may
return such a run, with the segment size alongside, to be cut the same way here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

MAX_SEGMENTS = 64  # the kernel's limit (UDP_MAX_SEGMENTS) is 64 on older kernels, 128 on newer
MAX_UDP_PAYLOAD = 65507  # the largest payload of one IPv4 UDP datagram


def gso_runs(packets: Sequence[bytes], max_segments: int = MAX_SEGMENTS,
             max_bytes: int = MAX_UDP_PAYLOAD) -> Iterator[tuple[int, list[bytes]]]:
    """Split `packets`, in order, into runs (segment size, members) that one GSO send can carry.

    All members of a run but the last have exactly the segment size, the last is at most that
    long; a run has at most `max_segments` members and `max_bytes` bytes. An empty packet is a
    run of its own (a zero segment size cannot be sent).
    """
    run: list[bytes] = []
    size = total = 0
    for packet in packets:
        length = len(packet)
        if run and (length <= size and length > 0 and len(run) < max_segments
                    and total + length <= max_bytes and len(run[-1]) == size):
            run.append(packet)
            total += length
            continue
        if run:
            yield size, run
        run, size, total = [packet], length, length
    if run:
        yield size, run


def split_run(data: bytes, segment_size: int) -> list[bytes]:
    """The datagrams of a coalesced read: `segment_size` bytes each, the last possibly shorter."""
    if segment_size <= 0 or len(data) <= segment_size:
        return [data]
    return [data[offset : offset + segment_size] for offset in range(0, len(data), segment_size)]
