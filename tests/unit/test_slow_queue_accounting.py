"""The slow-queue benchmark's airtime accounting (benchmarks/slow_queue.py): what a tunnel's
capture says crossed the air, by kind, with each frame's airtime, up to the transfer's end."""

from __future__ import annotations

from pathlib import Path

from benchmarks.slow_queue import arrived
from linkbridge.datapath.pcap import PcapWriter
from linkbridge.wire.queue import ACK, SYN
from tests.helpers.ip_packets import A4, B4, echo, tcp

PSH = 0x08
SEGMENT = tcp(seq=1, flags=ACK | PSH, payload=b"d" * 200)


def capture(path: Path, packets: list[bytes]) -> None:
    """`packets` recorded at times 1, 2, 3... as a tunnel's --pcap records them."""
    times = iter(range(1, len(packets) + 1))
    with path.open("wb") as stream:
        writer = PcapWriter(stream, clock=lambda: float(next(times)))
        for packet in packets:
            writer.write(packet)


def test_frames_are_counted_by_kind_with_their_airtime(tmp_path: Path) -> None:
    syn, pure_ack, ping = tcp(seq=0, ack=0, flags=SYN), tcp(ack=7), echo()
    from_b = tcp(flags=ACK | PSH, payload=b"x", src=B4, dst=A4)
    capture(tmp_path / "b.pcap", [syn, syn, pure_ack, SEGMENT, SEGMENT, ping, from_b])
    got = arrived(str(tmp_path / "b.pcap"), A4, lambda frame: float(len(frame)), until=10.0)
    assert got.frames == {"data": 2, "again": 2, "ACKs": 1, "other": 1}
    assert got.seconds == {"data": len(syn) + len(SEGMENT), "again": len(syn) + len(SEGMENT),
                           "ACKs": len(pure_ack), "other": len(ping)}
    assert str(got) == "2 segments + 2 again, 1 ACKs, 1 other"


def test_what_arrived_after_the_transfer_is_left_out(tmp_path: Path) -> None:
    capture(tmp_path / "b.pcap", [SEGMENT, tcp(ack=9), echo()])  # at 1, 2 and 3 s
    got = arrived(str(tmp_path / "b.pcap"), A4, lambda frame: 1.0, until=2.0)
    assert got.frames == {"data": 1, "again": 0, "ACKs": 1, "other": 0}
