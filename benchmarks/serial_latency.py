"""Per-packet overhead linkbridge adds on a serial line, serialisation at the baud rate excluded.

First the bare cable: a paced pty pair (linkbridge.lab.uart) carries a SLIP frame the size of
an echo request from one end to the other, many times; the median is the line's one-way time
(serialisation at the baud rate plus the cable's own relay). Then two lab hosts run linkbridge
over `serial:` on a cable of the same baud and ping each other. A round trip crosses the line
twice, so the overhead per packet is (median RTT - 2 x median line time) / 2: both linkbridge
ends, the TUN devices and the kernel's echo reply. Target: under 1 ms at the median. Needs root.
"""

from __future__ import annotations

import argparse
import os
import select
import statistics
import time
from collections.abc import Sequence

from benchmarks.running import run_measurements, verdict_status
from linkbridge.errors import LinkbridgeError
from linkbridge.framing.slip import END, encode
from linkbridge.lab.probes import echo_request, ping
from linkbridge.lab.run import lab_tunnels
from linkbridge.lab.topology import OVERLAY, two_hosts
from linkbridge.lab.uart import uart_cable
from linkbridge.plugin.lab import SERIAL_BITS_PER_BYTE
from linkbridge.plugin.registry import LinkRegistry, get_plugin_manager

IPV4_HEADER = 20
TARGET_MS = 1.0
READ_TIMEOUT = 2.0


def echo_packet(payload_size: int) -> bytes:
    """An IPv4 packet the size of the echo requests ping sends (header bytes are arbitrary)."""
    icmp = echo_request(1, 1, bytes(payload_size))
    total = IPV4_HEADER + len(icmp)
    header = bytes([0x45, 0]) + total.to_bytes(2, "big") + bytes(16)
    return header + icmp


def line_times_ms(baud: int, frame: bytes, count: int, interval: float) -> list[float]:
    """One-way times of `frame` over a bare paced cable, written at one end, read at the other."""
    times: list[float] = []
    with uart_cable(baud) as cable:
        writer = os.open(cable.path_a, os.O_RDWR | os.O_NOCTTY)
        reader = os.open(cable.path_b, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            poller = select.poll()
            poller.register(reader, select.POLLIN)
            for _ in range(count):
                start = time.perf_counter()
                os.write(writer, frame)
                received = b""
                while received.count(END) < 2:
                    if not poller.poll(READ_TIMEOUT * 1000):
                        raise LinkbridgeError("the bare cable did not deliver a frame")
                    received += os.read(reader, 4096)
                times.append((time.perf_counter() - start) * 1000)
                time.sleep(interval)
        finally:
            os.close(writer)
            os.close(reader)
    return times


def tunnel_rtts_ms(baud: int, count: int, interval: float, payload: int) -> list[float]:
    """Ping RTTs across two lab hosts joined by linkbridge over `serial:` at `baud`."""
    registry = LinkRegistry(get_plugin_manager())
    with two_hosts() as hosts, lab_tunnels(hosts, f"serial:?baud={baud}", registry=registry):
        ping(hosts.a, OVERLAY[1], 3, interval, payload)  # warm up (ARP-free, but first packets)
        result = ping(hosts.a, OVERLAY[1], count, interval, payload)
    if not result.rtts_ms:
        raise LinkbridgeError("no ping replies over the serial tunnel")
    return result.rtts_ms


def report(baud: int, frame: bytes, line: list[float], rtts: list[float],
           lost: int) -> tuple[list[str], float]:
    serialisation = len(frame) * SERIAL_BITS_PER_BYTE / baud * 1000
    line_median, rtt_median = statistics.median(line), statistics.median(rtts)
    overhead = (rtt_median - 2 * line_median) / 2
    verdict = "ok" if overhead < TARGET_MS else "MISSED"
    lines = [
        f"serial latency: {baud} baud 8N1, {len(frame)}-byte SLIP frames "
        f"({len(rtts)} pings, {lost} lost)",
        f"  serialisation at the baud rate   {serialisation:8.3f} ms per frame",
        f"  bare cable one-way (median)      {line_median:8.3f} ms "
        f"[{min(line):.3f}..{max(line):.3f}]",
        f"  ping RTT over linkbridge (median){rtt_median:8.3f} ms "
        f"[{min(rtts):.3f}..{max(rtts):.3f}]",
        f"  linkbridge overhead per packet   {overhead:8.3f} ms  "
        f"(target < {TARGET_MS:g} ms: {verdict})",
    ]
    return lines, overhead


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks serial-latency",
                                     description=__doc__)
    parser.add_argument("--baud", type=int, default=115200, help="line speed (default 115200)")
    parser.add_argument("--count", type=int, default=50, help="frames and pings (default 50)")
    parser.add_argument("--interval", type=float, default=0.02,
                        help="pause between pings, seconds (default 0.02)")
    parser.add_argument("--payload", type=int, default=56, help="ping payload bytes (default 56)")
    args = parser.parse_args(argv)
    if args.count < 1 or args.baud < 50 or args.interval < 0 or args.payload < 0:
        parser.error("--count and --baud must be positive, --interval and --payload >= 0")
    frame = encode(echo_packet(args.payload))
    status, measured = run_measurements(
        lambda: (line_times_ms(args.baud, frame, args.count, args.interval),
                 tunnel_rtts_ms(args.baud, args.count, args.interval, args.payload)),
        "network namespaces, TUN")
    if measured is None:
        return status
    line, rtts = measured
    lines, _overhead = report(args.baud, frame, line, rtts, args.count - len(rtts))
    print("\n".join(lines), flush=True)
    return verdict_status(lines)
