"""Header compression on a narrow link: `--compress off` vs `vj` vs `auto`, side by side.

Two lab hosts joined by linkbridge over a `sim:` link at 9600 bit/s. Each case runs the same
traffic through tunnels without and with compression in one run and prints the ratio:

- TCP goodput over `sim:?rate=9600&mtu=100` with TCP timestamps on (Linux's default): auto
  >= 1.4x off
- the same with timestamps off in both hosts (`-nots`), as VJ needs: auto >= vj
- the same with `loss=2%`: auto >= 1.3x off, content intact, no TCP checksum error in either
  kernel (a wrongly rebuilt packet would show there)
- timestamps off with `loss=1%` and `loss=5%`: auto >= vj, auto's content intact (VJ loses
  its reference with each lost frame and waits for TCP to resend; auto's frames decode on
  their own)
- IPv6 UDP with 32-byte payloads over `sim:?rate=9600&mtu=64` (the tunnel at MTU 1280, so off
  needs the fragmentation layer): auto delivers >= 1.6x the packets/s of off
- ping RTT with 84-byte IPv4 echoes at 9600 bit/s: auto <= 0.85x off (median)
- codec cost, compress + decompress per packet, in this process: <= 20 us

Exits 1 when a target is missed. Needs root (network namespaces, TUN devices).
"""

from __future__ import annotations

import argparse
import contextlib
import random
import socket
import statistics
import struct
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from benchmarks.running import run_measurements
from linkbridge.errors import LinkbridgeError
from linkbridge.lab import netns
from linkbridge.lab.probes import ping, tcp_transfer
from linkbridge.lab.run import lab_tunnels
from linkbridge.lab.topology import OVERLAY, OVERLAY6, TwoHosts, two_hosts
from linkbridge.plugin.registry import LinkRegistry, get_plugin_manager
from linkbridge.wire.compress import AUTO, VJ, codec_pair
from linkbridge.wire.compress.headers import TIMESTAMPS
from linkbridge.wire.compress.sums import checksum, pseudo_sum, word_sum

RATE = 9600
TCP_LINK = f"sim:?rate={RATE}&mtu=100"
UDP_LINK = f"sim:?rate={RATE}&mtu=64"
PING_LINK = f"sim:?rate={RATE}&mtu=100"
TARGETS = {"tcp": 1.4, "tcp_nots": 1.0, "tcp_loss": 1.3, "udp6": 1.6, "ping": 0.85,
           "cost_us": 20.0}
VJ_LOSSES = ("1%", "5%")
UDP_PAYLOAD = 32
UDP_PORT = 5402


@dataclass
class Line:
    case: str
    figures: dict[str, float]
    unit: str
    ratio: float
    target: str
    met: bool

    def text(self) -> str:
        values = "  ".join(f"{mode} {value:8.1f}" for mode, value in self.figures.items())
        return (f"  {self.case:<37} {values}  {self.unit:<10} ratio {self.ratio:5.2f} "
                f"(target {self.target}: {'met' if self.met else 'NOT met'})")


@contextlib.contextmanager
def tunnels(hosts: TwoHosts, link: str, mode: str, registry: LinkRegistry, mtu: int | None = None,
            ipv6: bool = False, timestamps: bool = True) -> Iterator[None]:
    """Both tunnels over `link` with `--compress mode`, TCP timestamps as asked in both hosts.
    `--queue off`: the figures are compression's alone (the link-aware queue, on by default at
    9600 bit/s, is measured by `benchmarks slow-queue`)."""
    set_timestamps(hosts, timestamps)
    try:
        with lab_tunnels(hosts, link, mtu=mtu, extra_args=["--compress", mode, "--queue", "off"],
                         ipv6=ipv6, registry=registry):
            yield
    finally:
        set_timestamps(hosts, True)


def set_timestamps(hosts: TwoHosts, on: bool) -> None:
    for ns in (hosts.a, hosts.b):
        with netns.inside(ns), open("/proc/sys/net/ipv4/tcp_timestamps", "w") as file:
            file.write("1" if on else "0")


def csum_errors(hosts: TwoHosts) -> int:
    """TCP segments with a bad checksum the two kernels received (InCsumErrors)."""
    total = 0
    for ns in (hosts.a, hosts.b):
        with netns.inside(ns), open("/proc/net/snmp") as file:
            rows = [line.split() for line in file if line.startswith("Tcp:")]
        total += int(dict(zip(rows[0], rows[1], strict=True)).get("InCsumErrors", 0))
    return total


def goodput(hosts: TwoHosts, link: str, mode: str, size: int, registry: LinkRegistry,
            timestamps: bool = True) -> tuple[float, bool]:
    """(TCP payload bytes/s A -> B, content intact and no checksum error in either kernel)."""
    with tunnels(hosts, link, mode, registry, timestamps=timestamps):
        before = csum_errors(hosts)
        transfer = tcp_transfer(hosts.b, OVERLAY[1], hosts.a, size, timeout=size / 100 + 60)
        clean = transfer.intact and csum_errors(hosts) == before
    return transfer.received_bytes / transfer.seconds, clean


def udp6_rate(hosts: TwoHosts, mode: str, seconds: float, registry: LinkRegistry) -> float:
    """IPv6 UDP datagrams/s delivered A -> B while A offers more than the line carries."""
    with tunnels(hosts, UDP_LINK, mode, registry, mtu=1280, ipv6=True):
        with netns.inside(hosts.b):
            receiver = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        with netns.inside(hosts.a):
            sender = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        arrivals: list[float] = []
        done = threading.Event()

        def count() -> None:
            receiver.settimeout(0.3)
            while not done.is_set():
                with contextlib.suppress(TimeoutError):
                    receiver.recv(2048)
                    arrivals.append(time.perf_counter())

        with receiver, sender:
            receiver.bind((OVERLAY6[1], UDP_PORT))
            counter = threading.Thread(target=count, daemon=True)
            counter.start()
            offered = 2 * RATE / 8 / (UDP_PAYLOAD + 5)  # twice what compressed frames fill
            start = time.perf_counter()
            sent = 0
            while (now := time.perf_counter()) - start < seconds:
                while sent < (now - start) * offered:
                    with contextlib.suppress(OSError):
                        sender.sendto(bytes(UDP_PAYLOAD), (OVERLAY6[1], UDP_PORT))
                    sent += 1
                time.sleep(0.01)
            time.sleep(1.0)
            done.set()
            counter.join()
    settled = [t for t in arrivals if t >= start + 1.0]  # after the first second's queue fill
    if len(settled) < 2:
        return 0.0
    return (len(settled) - 1) / (settled[-1] - settled[0])


def ping_rtt(hosts: TwoHosts, mode: str, count: int, registry: LinkRegistry) -> float:
    """Median RTT (ms) of 84-byte IPv4 echoes, after two that set up the contexts."""
    with tunnels(hosts, PING_LINK, mode, registry):
        ping(hosts.a, OVERLAY[1], count=2, interval=0.3, timeout=2.0)
        result = ping(hosts.a, OVERLAY[1], count=count, interval=0.3, timeout=2.0)
    return statistics.median(result.rtts_ms) if result.rtts_ms else float("inf")


def tcp_segment(seq: int, ack: int, ip_id: int, payload: bytes, options: bytes) -> bytes:
    """An IPv4 TCP segment between the lab's overlay addresses, checksums filled in."""
    src, dst = socket.inet_aton(OVERLAY[0]), socket.inet_aton(OVERLAY[1])
    tcp = bytearray(struct.pack("!HHIIBBHHH", 40000, 5201, seq, ack, (20 + len(options)) << 2,
                                0x10, 502, 0, 0) + options + payload)
    pseudo = pseudo_sum(src + dst, 6, len(tcp))
    tcp[16:18] = (~((pseudo + word_sum(tcp)) % 0xFFFF or 0xFFFF) & 0xFFFF).to_bytes(2, "big")
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), ip_id, 0x4000, 64, 6,
                               0, src, dst))
    ip[10:12] = checksum(ip).to_bytes(2, "big")
    return bytes(ip + tcp)


def bulk_flow(packets: int, timestamps: bool, acks: bool = True) -> list[bytes]:
    """A bulk TCP flow's data segments, 48 bytes of data each; with `acks` the peer's ACK
    moves every second segment (data both ways), without it stays (a one-way transfer)."""
    rng = random.Random(5)
    return [tcp_segment(1 + 48 * i, 900 + (i // 2 if acks else 0), i + 1, rng.randbytes(48),
                        TIMESTAMPS + struct.pack("!II", 1000 + i // 3, 7) if timestamps else b"")
            for i in range(packets)]


def header_bytes(mode: str, timestamps: bool, acks: bool = True, packets: int = 5000) -> float:
    """The mean compressed header of the bulk flow's data segments (its full headers included)."""
    compressor, _ = codec_pair(mode, lambda _reason: None)
    flow = bulk_flow(packets, timestamps, acks)
    return statistics.fmean(len(compressor.compress(packet)) - 48 for packet in flow)


def header_sizes() -> str:
    """The mean compressed headers of bulk_flow() by mode, timestamps and ACKs, as one line."""
    sizes = [f"auto {header_bytes(AUTO, True):.1f} B (of 52, with timestamps)"]
    for acks, flow in ((True, "the ACK moving"), (False, "one way")):
        sizes.append(f"without, {flow}: auto {header_bytes(AUTO, False, acks):.1f} B, vj "
                     f"{header_bytes(VJ, False, acks):.1f} B (of 40)")
    return "; ".join(sizes)


def codec_cost(mode: str, packets: int = 20000) -> float:
    """Microseconds to compress and decompress one packet of bulk_flow(), with timestamps for
    auto, without for vj, as each is used."""
    flow = bulk_flow(packets, timestamps=mode != VJ)
    compressor, decompressor = codec_pair(mode, lambda _reason: None)
    start = time.process_time()  # CPU time: other processes on the machine do not count
    for packet in flow:
        if decompressor.feed(compressor.compress(packet), 0.0) != packet:
            raise LinkbridgeError(f"{mode}: a packet did not come back whole")
    return (time.process_time() - start) / packets * 1e6


def measure(args: argparse.Namespace) -> list[Line]:
    registry = LinkRegistry(get_plugin_manager())
    lines = []
    size = int(RATE / 8 * args.seconds * 0.45)  # about `seconds` uncompressed
    with two_hosts() as hosts:
        off, off_clean = goodput(hosts, TCP_LINK, "off", size, registry)
        auto, auto_clean = goodput(hosts, TCP_LINK, AUTO, size, registry)
        ratio = auto / off
        lines.append(Line("TCP goodput", {"off": off, "auto": auto}, "B/s", ratio,
                          f">= {TARGETS['tcp']}x", ratio >= TARGETS["tcp"] and off_clean
                          and auto_clean))
        for loss in ("", *VJ_LOSSES):
            link = TCP_LINK + (f"&loss={loss}&seed=16" if loss else "")
            vj, vj_clean = goodput(hosts, link, VJ, size, registry, timestamps=False)
            bare, bare_clean = goodput(hosts, link, AUTO, size, registry, timestamps=False)
            ratio = bare / vj
            lines.append(Line("TCP goodput, no timestamps" + (f", loss={loss}" if loss else ""),
                              {"vj-nots": vj, "auto-nots": bare}, "B/s", ratio,
                              f"auto >= {TARGETS['tcp_nots']:g}x vj",
                              ratio >= TARGETS["tcp_nots"] and bare_clean
                              and (vj_clean or bool(loss))))
        lossy = TCP_LINK + "&loss=2%&seed=16"
        off, off_clean = goodput(hosts, lossy, "off", size, registry)
        auto, auto_clean = goodput(hosts, lossy, AUTO, size, registry)
        ratio = auto / off
        lines.append(Line("TCP goodput, loss=2%", {"off": off, "auto": auto}, "B/s", ratio,
                          f">= {TARGETS['tcp_loss']}x, intact",
                          ratio >= TARGETS["tcp_loss"] and off_clean and auto_clean))
        off = udp6_rate(hosts, "off", args.udp_seconds, registry)
        auto = udp6_rate(hosts, AUTO, args.udp_seconds, registry)
        ratio = auto / off if off else 0.0
        lines.append(Line("IPv6 UDP 32 B payloads, mtu=64", {"off": off, "auto": auto},
                          "packets/s", ratio, f">= {TARGETS['udp6']}x", ratio >= TARGETS["udp6"]))
        off = ping_rtt(hosts, "off", args.pings, registry)
        auto = ping_rtt(hosts, AUTO, args.pings, registry)
        ratio = auto / off
        lines.append(Line("ping RTT, 84-byte IPv4 echo", {"off": off, "auto": auto}, "ms",
                          ratio, f"<= {TARGETS['ping']}x", ratio <= TARGETS["ping"]))
    auto_cost, vj_cost = codec_cost(AUTO), codec_cost(VJ)
    lines.append(Line("cost per packet, compress+decompress", {"vj": vj_cost, "auto": auto_cost},
                      "us", auto_cost / TARGETS["cost_us"], f"auto <= {TARGETS['cost_us']:g} us",
                      auto_cost <= TARGETS["cost_us"]))
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks compression",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="length of the uncompressed TCP transfer (default 60)")
    parser.add_argument("--udp-seconds", type=float, default=10.0,
                        help="sending time of each UDP run (default 10)")
    parser.add_argument("--pings", type=int, default=20, help="echoes per ping run (20)")
    args = parser.parse_args(argv)
    status, lines = run_measurements(lambda: measure(args), "network namespaces, TUN")
    if lines is None:
        return status
    print(f"header compression over sim: at {RATE} bit/s (off vs vj vs auto, one run)")
    for line in lines:
        print(line.text())
    print(f"  mean header of a bulk data segment: {header_sizes()}")
    return 0 if all(line.met for line in lines) else 1


if __name__ == "__main__":
    sys.exit(main())
