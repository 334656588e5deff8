"""Streams of packets like real flows produce, and an in-memory channel between a compressor
and a decompressor that loses, duplicates, reorders and corrupts frames, for the compression
property tests."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hypothesis import strategies as st

from linkbridge.wire.compress import PacketCompressor, PacketDecompressor
from tests.helpers.ip_packets import echo, tcp, timestamps, udp

FlowKind = tuple[str, int]  # ("tcp" | "tcp-ts" | "udp" | "echo", IP version)
VJ_KINDS: list[FlowKind] = [("tcp", 4)]
AUTO_KINDS: list[FlowKind] = [(kind, version) for kind in ("tcp", "tcp-ts", "udp", "echo")
                              for version in (4, 6)]


@dataclass
class Flow:
    """One flow's evolving header fields."""

    kind: FlowKind
    port: int
    seq: int = 1000
    ack: int = 7000
    ip_id: int = 1
    ts: int = 5000
    window: int = 500
    echo_seq: int = 0

    def next(self, rng: random.Random) -> bytes:
        kind, version = self.kind
        self.ip_id = (self.ip_id + rng.choice((1, 1, 1, 2, 300))) & 0xFFFF
        if kind == "udp":
            return udp(version, sport=self.port, payload=rng.randbytes(rng.randrange(0, 60)),
                       ip_id=self.ip_id)
        if kind == "echo":
            self.echo_seq = (self.echo_seq + rng.choice((1, 1, 2))) & 0xFFFF
            return echo(version, ident=self.port, seq=self.echo_seq, ip_id=self.ip_id,
                        reply=rng.random() < 0.5, payload=rng.randbytes(rng.randrange(0, 64)))
        payload = rng.randbytes(rng.choice((0, 1, 48, 48, 48, 200)))
        self.seq += len(payload) if rng.random() < 0.95 else -rng.randrange(1, 5000)
        self.ack += rng.choice((0, 0, 1, 48))
        if rng.random() < 0.05:
            self.window = rng.randrange(0, 65536)
        flags = rng.choice((0x10, 0x10, 0x10, 0x18, 0x18, 0x11, 0x12, 0x30))
        options = b""
        if kind == "tcp-ts":
            self.ts += rng.choice((0, 1, 3, 40))
            options = timestamps(self.ts, self.ts - 900)
            if rng.random() < 0.05:  # a SACK block
                options += b"\x01\x01\x05\x0a" + rng.randbytes(8)
        return tcp(version, sport=self.port, seq=self.seq, ack=self.ack, flags=flags,
                   window=self.window, payload=payload, options=options, ip_id=self.ip_id,
                   urgent=rng.randrange(1, 100) if flags & 0x20 else 0)


def packet_stream(seed: int, count: int, kinds: Sequence[FlowKind], flows: int) -> list[bytes]:
    """`count` packets of `flows` interleaved flows of the given kinds."""
    rng = random.Random(seed)
    pool = [Flow(rng.choice(list(kinds)), 20000 + n) for n in range(flows)]
    active = rng.choices(pool, k=count)
    return [flow.next(rng) for flow in active]


@st.composite
def streams(draw: st.DrawFn, kinds: Sequence[FlowKind], max_flows: int = 4,
            max_count: int = 120) -> list[bytes]:
    """A hypothesis strategy of packet streams."""
    return packet_stream(draw(st.integers(0, 2**32)), draw(st.integers(1, max_count)), kinds,
                         draw(st.integers(1, max_flows)))


@dataclass
class Channel:
    """Frames from one end's compressor to the other end's decompressor, and its feedback back.

    `fate(index)` says what happens to the frame at `index`: "pass", "lose", "dup", "late"
    (delivered after the next frame) or "corrupt" (one byte changed by `corrupt`).
    """

    compressor: PacketCompressor
    decompressor: PacketDecompressor
    fate: Callable[[int], str] = lambda _index: "pass"
    corrupt: Callable[[bytes], bytes] = lambda frame: frame
    lose_feedback: bool = False
    frames: list[bytes] = field(default_factory=list)
    delivered: list[bytes] = field(default_factory=list)
    clock: float = 0.0

    def run(self, packets: Sequence[bytes]) -> list[bytes]:
        late: list[bytes] = []
        for index, packet in enumerate(packets):
            frame = self.compressor.compress(packet)
            assert len(frame) <= len(packet), "a frame longer than its packet"
            self.frames.append(frame)
            fate = self.fate(index)
            arriving = {"pass": [frame], "lose": [], "dup": [frame, frame], "late": [],
                        "corrupt": [self.corrupt(frame)]}[fate]
            if fate != "late":
                arriving, late = arriving + late, []
            else:
                late.append(frame)
            for each in arriving:
                self._deliver(each)
        for each in late:
            self._deliver(each)
        return self.delivered

    def _deliver(self, frame: bytes) -> None:
        self.clock += 0.01
        packet = self.decompressor.feed(frame, self.clock)
        if packet is not None:
            self.delivered.append(packet)
        for feedback in self.decompressor.take_feedback():
            if not self.lose_feedback:
                self.compressor.feedback(feedback)
