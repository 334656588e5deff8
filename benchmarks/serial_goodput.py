"""Goodput of the serial: link: bulk UDP over two tunnels joined by a paced pty pair.

A sender in lab host A offers a little more than the line can carry; the receiver in host B
times the arrivals. While the line is busy, the most IP bytes it can deliver per second are
the line rate (baud/10 bytes/s for 8N1) times ip/(ip + SLIP overhead), the overhead being the
two ENDs per frame (escapes in the IP/UDP headers are not known here and counted as zero, which
makes the ratio conservative). The benchmark prints the delivered IP bytes/s as a fraction of
that maximum (target >= 95%), and the UDP payload goodput. Needs root.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from linkbridge.errors import LinkbridgeError
from linkbridge.framing.slip import encoded_size
from linkbridge.lab import netns
from linkbridge.lab.run import lab_tunnels
from linkbridge.lab.topology import OVERLAY, two_hosts
from linkbridge.plugin.lab import SERIAL_BITS_PER_BYTE
from linkbridge.plugin.registry import LinkRegistry, get_plugin_manager

IP_UDP_HEADERS = 28
PORT = 5400
OFFER = 1.1  # the sender offers this multiple of what the line can carry
TARGET = 0.95


@dataclass
class Arrivals:
    count: int = 0
    first: float = 0.0
    last: float = 0.0


def receive(sock: socket.socket, arrivals: Arrivals, done: threading.Event) -> None:
    sock.settimeout(0.5)
    while True:
        try:
            sock.recv(65535)
        except TimeoutError:
            if done.is_set():
                return
            continue
        now = time.perf_counter()
        if not arrivals.count:
            arrivals.first = now
        arrivals.count += 1
        arrivals.last = now


def send(sock: socket.socket, payload: bytes, rate_pps: float, seconds: float) -> int:
    """Send `payload` to B at `rate_pps` datagrams per second for `seconds`; return the count."""
    sent = 0
    start = time.perf_counter()
    while (now := time.perf_counter()) - start < seconds:
        due = int((now - start) * rate_pps) + 1
        while sent < due:
            # ENOBUFS while the tunnel queue is full: offered, not sent
            with contextlib.suppress(OSError):
                sock.sendto(payload, (OVERLAY[1], PORT))
            sent += 1
        time.sleep(min(0.005, 1 / rate_pps))
    return sent


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks serial-goodput",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--baud", type=int, default=115200, help="line speed (default 115200)")
    parser.add_argument("--mtu", type=int, default=1006, help="tunnel MTU (default 1006)")
    parser.add_argument("--seconds", type=float, default=10.0, help="sending time (10)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("serial-goodput: error: needs root (network namespaces, TUN)", file=sys.stderr)
        return 2
    ip_size = args.mtu
    payload = b"\x55" * (ip_size - IP_UDP_HEADERS)  # no byte of it needs a SLIP escape
    line_bytes_per_s = args.baud / SERIAL_BITS_PER_BYTE
    frame_size = encoded_size(bytes(ip_size))  # the packet plus its two ENDs
    max_ip_per_s = line_bytes_per_s * ip_size / frame_size
    rate_pps = OFFER * max_ip_per_s / ip_size
    arrivals = Arrivals()
    done = threading.Event()
    try:
        link = f"serial:?baud={args.baud}&mtu={args.mtu}"
        registry = LinkRegistry(get_plugin_manager())
        with two_hosts() as hosts, lab_tunnels(hosts, link, registry=registry):
            with netns.inside(hosts.b):
                receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            with netns.inside(hosts.a):
                sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            with receiver, sender:
                receiver.bind((OVERLAY[1], PORT))
                counter = threading.Thread(target=receive, args=(receiver, arrivals, done),
                                           daemon=True)
                counter.start()
                sent = send(sender, payload, rate_pps, args.seconds)
                time.sleep(0.5)
                done.set()
                counter.join()
    except LinkbridgeError as exc:
        print(f"serial-goodput: error: {exc}", file=sys.stderr)
        return 2
    if arrivals.count < 2:
        print("serial-goodput: error: nothing arrived", file=sys.stderr)
        return 1
    window = arrivals.last - arrivals.first
    ip_per_s = (arrivals.count - 1) * ip_size / window  # bytes that arrived after the first
    ratio = ip_per_s / max_ip_per_s
    payload_per_s = (arrivals.count - 1) * len(payload) / window
    print(f"serial goodput at {args.baud} baud (8N1), MTU {args.mtu}, {args.seconds:.0f} s "
          f"offered at {OFFER:.0%} of the line")
    print(f"  line rate                  {line_bytes_per_s:9.0f} B/s")
    print(f"  minus SLIP overhead        {max_ip_per_s:9.0f} B/s of IP packets "
          f"({frame_size} line bytes per {ip_size}-byte packet)")
    print(f"  delivered                  {ip_per_s:9.0f} B/s of IP packets = {ratio:.1%} "
          f"(target >= {TARGET:.0%}: {'ok' if ratio >= TARGET else 'MISSED'})")
    print(f"  UDP payload goodput        {payload_per_s:9.0f} B/s "
          f"({payload_per_s / line_bytes_per_s:.1%} of the line rate)")
    print(f"  datagrams                  {sent} offered, {arrivals.count} delivered")
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
