"""The offload layer (`--offload`): a TUN device with virtio_net_hdr and kernel offloads, whose
TCP super-packets cross the link as offload chunks (docs/offload.md).

OffloadingTunnel stands where the TUN endpoint stands, on the tunnel side of the bridge. Towards
the link it turns each read into link frames: a plain packet as it is, anything with a header
that asks for work (a super-packet to segment, a checksum to finish) as chunks that fit the
link's frames. From the link it takes IP packets (written with an empty header) and chunks
(reassembled, then written whole with their header: the kernel segments or accepts them).

The kernel hands out super-packets only once the peer said, with a hello, that it takes chunks,
and only the segmentations the peer's kernel takes in a write; until then the device's offloads
stay off and every packet leaves complete, so a plain peer (no --offload, the socat variant)
never sees a chunk. A peer that sends hellos but whose kernel takes no segmentation gets
checksum offload only.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from linkbridge.datapath.batch import BATCH_LIMIT, BatchReader
from linkbridge.datapath.counters import Counters
from linkbridge.datapath.endpoint import BatchSender, Endpoint, SegmentSender
from linkbridge.datapath.lean import IPV4_PLAIN
from linkbridge.datapath.rawport import DevicePort
from linkbridge.errors import LinkbridgeError
from linkbridge.wire.drops import (
    MTU,
    OFFLOAD_INCOMPLETE,
    OFFLOAD_TOO_BIG,
    OFFLOAD_UNAGREED,
)
from linkbridge.wire.frames import OFFLOAD_CHUNK
from linkbridge.wire.offload import (
    CHUNK_FIRST_BYTE,
    GSO_ECN,
    HELLO_LENGTH,
    MIN_FRAME_SIZE,
    NEEDS_CSUM,
    PLAIN_DEVICE_BYTES,
    VNET_HDR_LEN,
    ChunkLayout,
    ChunkReassembler,
    ChunkRun,
    Delivered,
    VnetHeader,
    agreed_flags,
    capabilities,
    chunk_runs,
    coalesced_packet,
    complete_checksum,
    device_fields,
    flag_names,
    hello_frame,
    parse_hello,
    run_frames,
    whole_run,
)
from linkbridge.wire.packet import drop_reason, packet_problem
from linkbridge.wire.segments import split_run

log = logging.getLogger(__name__)
HELLO_INTERVAL = 1.0  # seconds between hellos while the peer has not answered
IPV4_HEADER = 20


class OffloadDevice(Protocol):
    """What the layer needs of a TUN device opened with IFF_VNET_HDR (tunnel.tun.TunEndpoint)."""

    name: str
    accepted: int
    read_size: int

    @property
    def counters(self) -> Counters: ...

    def fileno(self) -> int: ...

    def set_offload(self, flags: int) -> None: ...

    def close(self) -> None: ...


def frame_problem(frame: bytes) -> str | None:
    """The bridge's check of a frame towards an offloading tunnel: chunks pass (the layer
    checks what they rebuild), anything else must be a well-formed IP packet."""
    if frame and frame[0] >> 4 == OFFLOAD_CHUNK:
        return None
    return packet_problem(frame)


class OffloadingTunnel:
    """A TUN device with offloads as the tunnel side; `below` (the link side) takes the layer's
    hellos.

    `frame_size` is the largest frame the link carries: chunks are that long, and plain packets
    up to that long go as they are. `counters` are the device's (packets are super-packets, as
    the device reads and writes them), with the layer's figures under `offload`.
    """

    def __init__(self, device: OffloadDevice, frame_size: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if frame_size < MIN_FRAME_SIZE:
            raise LinkbridgeError(f"offload needs link frames of at least {MIN_FRAME_SIZE} bytes, "
                                  f"not {frame_size}")
        self.device = device
        self.name = device.name
        self.counters = device.counters
        self.frame_size = frame_size
        self.below: Endpoint | None = None
        self._segments: SegmentSender | None = None  # below, when it takes chunk runs whole
        self._sent_on = 0  # super-packets this receive() sent straight to _segments
        self._fd = device.fileno()
        self._read_size = device.read_size
        self._port = DevicePort(self._fd, self.counters, self._read_size)  # writes, counted
        self._caps = capabilities(device.accepted)
        self._clock = clock
        self.next_hello = 0.0  # when to say hello again (never, once the peer answered)
        self._agreed: int | None = None  # the offloads on, once the peer said what it takes
        self._packet_id = 0
        self._reassembler = ChunkReassembler()
        self._lock = threading.Lock()  # hellos come from both directions' threads
        self._reader = BatchReader(self._fd, self._read_one)
        self._layout = ChunkLayout(frame_size, self._read_size)  # the to-link thread's reads
        self.chunked_last = False  # whether the last read was cut into chunks
        offload = self.counters.offload
        offload["kernel_flags"] = device.accepted
        offload["enabled_flags"] = 0
        offload["peer_agreed"] = 0

    @property
    def state(self) -> str:
        """The layer's state for logs and status: what is on, or what it waits for."""
        if self._agreed is None:
            return "waiting for the peer's hello (sending complete packets)"
        if not self._agreed:
            return "agreed, but this kernel takes no offloads (sending complete packets)"
        return f"on ({flag_names(self._agreed)})"

    def attach(self, below: Endpoint) -> None:
        """Send hellos through `below` (the link side of the bridge), the first one now."""
        self.below = below
        self._segments = below if isinstance(below, SegmentSender) else None
        self.hello()

    def fileno(self) -> int:
        return self._fd

    def receive(self, timeout: float) -> list[bytes]:
        if self._clock() >= self.next_hello:
            self.hello()
        self._sent_on = 0
        return self._reader.receive(timeout)

    def sent_on(self) -> int:
        """Super-packets the last receive() sent straight to the link (endpoint.SendsOnItself)."""
        return self._sent_on

    def _read_one(self, frames: list[bytes]) -> None:
        if self._sent_on >= BATCH_LIMIT:
            raise BlockingIOError  # a batch's worth sent on: the batch ends here
        self.read_frames(frames)

    def read_frames(self, frames: list[bytes]) -> None:
        """frames_of() of one read of the device (BlockingIOError when there is none). After a
        read cut into chunks (a super-packet of a transfer) the next one is likely one too: it
        goes into the chunk layout; other reads (ACKs) stay plain reads."""
        packet_id = self._packet_id
        if self.chunked_last:
            self._read_laid_out(frames)
        else:
            self.frames_of(os.read(self._fd, self._read_size), frames)
        self.chunked_last = self._packet_id != packet_id

    def _read_laid_out(self, frames: list[bytes]) -> None:
        """frames_of() of one read of the device, read with readv() into the chunk layout: a
        packet to cut into chunks is stamped where it lies and each run of its chunks sent as
        one slice (docs/performance.md); anything else goes to frames_of() as it was read."""
        layout = self._layout
        size = os.readv(self._fd, layout.slots) - VNET_HDR_LEN
        fields = layout.header()
        if not fields[1] & ~GSO_ECN and size <= self.frame_size:  # no chunks: as frames_of()
            self.frames_of(layout.read(size + VNET_HDR_LEN), frames)
            return
        self.counters.received(size)
        header = VnetHeader(*fields)
        try:
            runs = layout.stamp(header, size, self._packet_id)
        except ValueError:
            self.counters.drop(OFFLOAD_TOO_BIG)
            return
        self._chunks_out(header, runs, frames, self._stamped_frames)

    def _stamped_frames(self, run: ChunkRun) -> list[bytes]:
        """The chunks of a run of ChunkLayout.stamp() as frames, one bytes object each."""
        return split_run(bytes(run[0][0]), self.frame_size)

    def frames_of(self, data: bytes, frames: list[bytes]) -> None:
        """Append the link frames of `data`, one read of the device, to `frames` (and count
        the read)."""
        size = len(data) - VNET_HDR_LEN
        self.counters.received(size)
        if data.startswith(PLAIN_DEVICE_BYTES) and size <= self.frame_size:
            frames.append(data[VNET_HDR_LEN:])  # the usual small packet: no header to parse
            return
        fields = device_fields(data)  # flags, gso_type, hdr_len, gso_size, csum_start, csum_offset
        offload = self.counters.offload
        if not fields[1] & ~GSO_ECN and size <= self.frame_size:  # no segmentation asked
            if not fields[0] & NEEDS_CSUM:
                frames.append(data[VNET_HDR_LEN:])
                return
            # a small packet whose checksum the kernel left to the device: completing it here
            # costs less than a chunk's framing on both sides, and any peer takes the result
            frames.append(complete_checksum(data[VNET_HDR_LEN:], fields[4], fields[5]))
            offload["checksums_completed"] += 1
            return
        header = VnetHeader(*fields)
        if self._agreed is None:  # the peer takes no chunks: only whole, complete packets
            self.counters.drop(OFFLOAD_UNAGREED if header.segmented else MTU)
            return
        try:  # the packet is not copied out of the read: chunks take their pieces from it
            runs = chunk_runs(header, memoryview(data)[VNET_HDR_LEN:], self.frame_size,
                              self._packet_id)
        except ValueError:
            self.counters.drop(OFFLOAD_TOO_BIG)
            return
        self._chunks_out(header, runs, frames, run_frames)

    def _chunks_out(self, header: VnetHeader, runs: list[ChunkRun], frames: list[bytes],
                    frames_of_run: Callable[[ChunkRun], list[bytes]]) -> None:
        """Count a packet's chunks `runs` and send each run in one GSO send (frames before it
        in `frames` first), or as `frames_of_run` cuts it where that fails; without a
        SegmentSender below, append its frames to `frames`."""
        offload = self.counters.offload
        self._packet_id += 1
        self.chunked_last = True
        if header.segmented:
            offload["super_packets_read"] += 1
        offload["chunks_sent"] += sum(count for _pieces, count, _length in runs)
        if self._segments is None:
            frames += [frame for run in runs for frame in frames_of_run(run)]
            return
        if frames:  # what this batch read before goes first
            self._send_frames(frames)
            frames.clear()
        self._sent_on += 1
        for run in runs:
            if not self._segments.send_segments(run[0], self.frame_size, run[1], run[2]):
                self._send_frames(frames_of_run(run))

    def _send_frames(self, frames: list[bytes]) -> None:
        """Hand `frames` to the link side, in one call where it takes batches."""
        assert self.below is not None
        if len(frames) > 1 and isinstance(self.below, BatchSender):
            self.below.send_many(frames)
        else:
            for frame in frames:
                self.below.send(frame)

    def send(self, frame: bytes) -> None:
        """Write a frame from the link into the device: an IP packet, or the offload
        chunks the bridge let through (frame_problem), or consume the peer's hello."""
        if frame[0] >> 4 != OFFLOAD_CHUNK:
            if len(frame) == HELLO_LENGTH and (hello := parse_hello(frame)) is not None:
                self._peer_hello(*hello)
                return
            if self._clock() >= self.next_hello:
                self.hello()
            self._port.write(frame, PLAIN_DEVICE_BYTES)
            return
        self.counters.offload["chunks_received"] += 1
        result = self._reassembler.feed(frame)
        if evicted := self._reassembler.take_evicted():
            self.counters.drop(OFFLOAD_INCOMPLETE, evicted)
        if result is not None:
            self._written(result)

    def send_many(self, frames: Sequence[bytes]) -> None:
        """send() for each of `frames`, with runs that are exactly one packet's chunks in
        order (what a GRO read of the peer's GSO send holds) rebuilt in one step."""
        index, total = 0, len(frames)
        while index < total:
            frame = frames[index]
            if frame[0] == CHUNK_FIRST_BYTE and len(frame) > 4 and frame[3] == 0 \
                    and 1 < (count := frame[4]) <= total - index:
                result = whole_run(frames[index : index + count])
                if result is not None:
                    self.counters.offload["chunks_received"] += count
                    self._written(result)
                    index += count
                    continue
            self.send(frame)
            index += 1

    def send_runs(self, runs: Sequence[tuple[bytes, int]],
                  check: Callable[[bytes], str | None] | None, drops: Counters) -> int:
        """send_many() for the reads of a RunSource: a read that is exactly one packet's chunks
        is rebuilt without being cut into frames; the rest is cut into frames, of which a plain
        IPv4 packet is written at once (as offload_poller() writes it) and any other is checked
        by `check` (a refused frame counted in `drops`) and goes to send_many(), everything in
        order."""
        if self._clock() >= self.next_hello:
            self.hello()
        frames: list[bytes] = []
        moved = 0
        for data, segment in runs:
            if segment:
                result = coalesced_packet(data, segment)
                if result is not None:
                    if frames:
                        self.send_many(frames)
                        frames = []
                    count = -(-len(data) // segment)
                    moved += count
                    self.counters.offload["chunks_received"] += count
                    self._written(result)
                    continue
                pieces = split_run(data, segment)
            else:
                pieces = [data]
            moved += len(pieces)
            for frame in pieces:
                if len(frame) != HELLO_LENGTH and len(frame) >= IPV4_HEADER \
                        and frame[0] == IPV4_PLAIN and (frame[2] << 8 | frame[3]) == len(frame):
                    if frames:  # a plain IPv4 packet: written at once, after what came before
                        self.send_many(frames)
                        frames = []
                    self._port.write(frame, PLAIN_DEVICE_BYTES)
                    continue
                problem = None if check is None else check(frame)
                if problem is None:
                    frames.append(frame)
                else:
                    drops.drop(drop_reason(problem))
        if frames:
            self.send_many(frames)
        return moved

    def _written(self, result: Delivered | str) -> None:
        """Write what reassembly gave: a packet with its header, or count its drop."""
        if isinstance(result, str):
            self.counters.drop(result)
            return
        header, packet = result
        if header.segmented:
            self.counters.offload["super_packets_written"] += 1
        self._port.write(packet, header.device_bytes())

    def _peer_hello(self, caps: int, reply: bool) -> None:
        self.counters.offload["hellos_received"] += 1  # consumed here, never written
        with self._lock:
            if self._agreed is None:
                flags = agreed_flags(self.device.accepted, caps)
                try:
                    self.device.set_offload(flags)
                except OSError as exc:
                    log.warning("%s: the kernel refused offloads %s (%s): offload off",
                                self.name, flag_names(flags), exc.strerror)
                    flags = 0
                self._agreed = flags
                self.next_hello = math.inf
                self.counters.offload["enabled_flags"] = flags
                self.counters.offload["peer_agreed"] = 1
                log.info("%s: the peer takes offload chunks: offload %s", self.name, self.state)
        if not reply:
            self.hello(reply=True)

    def hello(self, reply: bool = False) -> None:
        """Say hello to the peer now (`reply`: an answer to its hello)."""
        if self._agreed is None:
            self.next_hello = self._clock() + HELLO_INTERVAL
        if self.below is not None:
            self.counters.offload["hellos_sent"] += 1
            self.below.send(hello_frame(self._caps, reply))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.device.set_offload(0)
        self.device.close()
