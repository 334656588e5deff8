"""The header compression layer between the tunnel and a link (`--compress off|vj|auto`).

It sits above encryption and fragmentation (docs/architecture.md): packets from the tunnel are
compressed before anything else touches them, and frames from below are decompressed last. In
`auto` mode the decompressor's feedback frames go back down the same link; the peer's feedback
is handed to this end's compressor and never reaches the tunnel. In `vj` mode, when the
endpoint below reports loss (a LossReporter: a link whose decoder met a SLIP bad escape or
oversize frame, a CRC mismatch, their KISS equivalents), each loss tells the decompressor
(RFC 1144's TYPE_ERROR, as the kernel's PPP receive-error path calls slhc_toss) so that it
tosses compressed frames until one names its connection, instead of rebuilding them against
the wrong reference.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from linkbridge.datapath.counters import Counters
from linkbridge.datapath.endpoint import Endpoint, LossReporter
from linkbridge.wire.compress import MODES, OFF, VJ, codec_pair
from linkbridge.wire.compress.lbhc import Compressor
from linkbridge.wire.frames import UNCOMPRESSED, VJ_UNCOMPRESSED_TCP

__all__ = ["MODES", "OFF", "CompressingEndpoint"]


@dataclass
class CompressFigures:
    """One direction's compression figures."""

    packets: int = 0  # packets through the layer
    compressed: int = 0  # crossed as compressed headers
    full: int = 0  # crossed as full headers that set up a context
    saved: int = 0  # header bytes saved (packet bytes minus frame bytes)
    feedback: int = 0  # feedback frames (tx: sent to the peer, rx: received from it)

    def count(self, packet: int, frame: int, first_byte: int, mode: str) -> None:
        self.packets += 1
        self.saved += packet - frame
        if frame < packet:
            self.compressed += 1
        elif first_byte >> 4 == (VJ_UNCOMPRESSED_TCP if mode == VJ else UNCOMPRESSED):
            self.full += 1


class CompressCounters(Counters):
    """Packet counters of the layer; `as_dict` adds the compression figures per direction and
    the frame counters of the endpoint below."""

    def __init__(self, below: Endpoint, mode: str) -> None:
        super().__init__()
        self._below = below
        self.mode = mode
        self.tx = CompressFigures()
        self.rx = CompressFigures()

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(),
                "compress": {"mode": self.mode, "tx": vars(self.tx).copy(),
                             "rx": vars(self.rx).copy()},
                "frames": self._below.counters.as_dict()}


class CompressingEndpoint:
    """Wraps an open endpoint (a link, or the encryption or fragmentation layer over one):
    packets go down compressed, frames come up as the packets they carry. Decompression
    failures are counted here by reason (compress_*); nothing rebuilt wrongly comes up. In
    `vj` mode it listens to the loss reports of the endpoint below, when that is a
    LossReporter (`auto` frames decode alone: a lost one costs only itself)."""

    def __init__(self, below: Endpoint, mode: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if mode == OFF:
            raise ValueError("no compressing endpoint for --compress off")
        self.below = below
        self.mode = mode
        self.name = f"{mode}+{below.name}"
        self.counters = CompressCounters(below, mode)
        self._compressor, self._decompressor = codec_pair(mode, self.counters.drop,
                                                          first_gen=os.urandom(1)[0])
        self._clock = clock
        self._send_lock = threading.Lock()  # feedback goes down from the receiving thread
        self._bytes_below = 0  # frames handed down, feedback included (Resizing)
        if mode == VJ and isinstance(below, LossReporter):
            below.on_loss(self._frame_lost)

    def send(self, packet: bytes) -> None:
        frame = self._compressor.compress(packet)
        with self._send_lock:
            self.below.send(frame)
            self._bytes_below += len(frame)
        self.counters.tx.count(len(packet), len(frame), frame[0] if frame else 0, self.mode)
        self.counters.sent(len(packet))

    def bytes_below(self) -> int:
        """The bytes of the frames handed down so far (Resizing: what the queue paces by)."""
        return self._bytes_below

    def path_changed(self) -> None:
        """The frames go over another link now (a failover): in `auto` mode each flow's next
        packet goes with a full header, so a context set up on the old link is never relied
        on (VJ has its own recovery: the peer tosses until a full header)."""
        if isinstance(self._compressor, Compressor):
            self._compressor.refresh_all()

    def _frame_lost(self, reason: str) -> None:
        """The link below lost a frame (called on the receiving thread, inside its receive()
        and before it returns the frames around the loss): toss from the first of them (a
        compressed frame without its connection number is dropped, TCP resends it)."""
        self._decompressor.frame_lost()

    def receive(self, timeout: float) -> list[bytes]:
        frames = self.below.receive(timeout)
        if not frames:
            return frames
        now = self._clock()
        packets = []
        decompressor, rx = self._decompressor, self.counters.rx
        for frame in frames:
            if decompressor.is_feedback(frame):
                rx.feedback += 1
                self._compressor.feedback(frame)
                continue
            packet = decompressor.feed(frame, now)
            if packet is None:
                continue
            rx.count(len(packet), len(frame), frame[0] if frame else 0, self.mode)
            self.counters.received(len(packet))
            packets.append(packet)
        for feedback in decompressor.take_feedback():
            with self._send_lock:
                self.below.send(feedback)
                self._bytes_below += len(feedback)
            self.counters.tx.feedback += 1
        return packets

    def close(self) -> None:
        self.below.close()
