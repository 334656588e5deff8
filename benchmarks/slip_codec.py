"""SLIP codec throughput in pure Python: encode, decode, round trip, with and without CRC-16.

Packets are random bytes (so about 1 in 128 bytes needs escaping). Each figure is the best of
`--repeat` runs, in MB/s of packet bytes. PyPI's sliplib is measured alongside when it is
importable (it is not a dependency): `pip install sliplib` to compare.
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import time
from collections.abc import Callable, Sequence

from benchmarks.running import verdict_status
from linkbridge.framing.crc16 import append_crc, strip_crc
from linkbridge.framing.slip import SlipDecoder, encode

FASTEST_LINE_MB_S = 4_000_000 / 10 / 1e6  # the highest baud serial: takes, 8N1 (0.4 MB/s)
LINE_TARGET = 10.0  # round trip + CRC at >= 10x the fastest line: the codec never limits a link
SLIPLIB_TARGET = 1.5  # round trip at >= 1.5x sliplib's, measured in the same run


def best_rate(run: Callable[[], object], payload_bytes: int, repeat: int) -> float:
    """MB/s of `payload_bytes` for the fastest of `repeat` calls of `run`."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return payload_bytes / best / 1e6


def measure(packets: list[bytes], repeat: int) -> dict[str, float]:
    total = sum(map(len, packets))
    stream = b"".join(map(encode, packets))
    max_frame = max(map(len, packets)) + 2

    def encode_all() -> None:
        for packet in packets:
            encode(packet)

    def decode_stream() -> None:
        frames = SlipDecoder(max_frame).feed(stream)
        assert len(frames) == len(packets)

    def round_trip() -> None:
        decoder = SlipDecoder(max_frame)
        got = 0
        for packet in packets:
            got += len(decoder.feed(encode(packet)))
        assert got == len(packets)

    def round_trip_crc() -> None:
        decoder = SlipDecoder(max_frame)
        got = 0
        for packet in packets:
            for frame in decoder.feed(encode(append_crc(packet))):
                got += strip_crc(frame) is not None
        assert got == len(packets)

    rates = {
        "encode": best_rate(encode_all, total, repeat),
        "decode": best_rate(decode_stream, total, repeat),
        "round_trip": best_rate(round_trip, total, repeat),
        "round_trip_crc": best_rate(round_trip_crc, total, repeat),
    }
    sliplib_round_trip = sliplib_runner(packets)
    if sliplib_round_trip is not None:
        rates["sliplib_round_trip"] = best_rate(sliplib_round_trip, total, repeat)
    return rates


def sliplib_runner(packets: list[bytes]) -> Callable[[], None] | None:
    """A round trip through sliplib's Driver, or None when sliplib is not installed."""
    try:
        sliplib = importlib.import_module("sliplib")
    except ImportError:
        return None

    def run() -> None:
        driver = sliplib.Driver()
        got = 0
        for packet in packets:
            driver.receive(driver.send(packet))
            while driver.get(block=False) is not None:
                got += 1
        assert got == len(packets)

    return run


LABELS = {
    "encode": "encode",
    "decode": "decode (one stream)",
    "round_trip": "round trip",
    "round_trip_crc": "round trip + CRC-16",
    "sliplib_round_trip": "sliplib Driver round trip",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks slip-codec",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1500, help="packet size (default 1500)")
    parser.add_argument("--packets", type=int, default=2000, help="packets per run (2000)")
    parser.add_argument("--repeat", type=int, default=7, help="runs; the best counts (7)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the packet content")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    packets = [rng.randbytes(args.size) for _ in range(args.packets)]
    rates = measure(packets, args.repeat)
    if args.json:
        print(json.dumps({"size": args.size, "packets": args.packets, "mb_per_s": rates}))
        return 0
    print(f"SLIP codec, {args.packets} packets of {args.size} random bytes, "
          f"best of {args.repeat} (MB/s of packet bytes)")
    for key, label in LABELS.items():
        if key in rates:
            print(f"  {label:<28}{rates[key]:8.1f} MB/s")
    lines = targets(rates)
    print("\n".join(lines))
    return verdict_status(lines)


def targets(rates: dict[str, float]) -> list[str]:
    """The verdict lines: the codec against the fastest serial line, and against sliplib."""
    line_ratio = rates["round_trip_crc"] / FASTEST_LINE_MB_S
    lines = [f"  {'round trip + CRC / 4 Mbaud':<28}{line_ratio:8.1f}x  (target >= "
             f"{LINE_TARGET:g}x: {'ok' if line_ratio >= LINE_TARGET else 'MISSED'})"]
    if "sliplib_round_trip" in rates:
        ratio = rates["round_trip"] / rates["sliplib_round_trip"]
        lines.append(f"  {'round trip / sliplib':<28}{ratio:8.2f}x  (target >= "
                     f"{SLIPLIB_TARGET:g}x: {'ok' if ratio >= SLIPLIB_TARGET else 'MISSED'})")
    else:
        lines.append("  (sliplib not installed: not compared)")
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
