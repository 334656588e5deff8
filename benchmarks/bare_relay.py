"""The bare relay of `python -m benchmarks compare` (its `bare` column): the ceiling of a Python
relay with TUN offloads, measured beside the offload variant in the same run (issue 33).

One process per host: a TUN device opened with IFF_VNET_HDR and the kernel's checksum and TCP
segmentation offloads on from the start, joined to a connected UDP socket by two threads that
do nothing but move whole reads: a super-packet of up to 64 KB, virtio_net_hdr and all, is one
UDP datagram (the kernel fragments it at the IP layer, the peer's reassembles it), written back
whole with one write. No hello, no chunks, no counters, no checks: what linkbridge's offload path
costs beyond this is its own. The benchmark configures the device (addresses, MTU, up).

    python -m benchmarks.bare_relay DEVICE LOCAL_IP PORT REMOTE_IP
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Sequence

from linkbridge.tunnel.tun import TunEndpoint
from linkbridge.wire.offload import TCP_OFFLOADS

BUFFER = 4 * 1024 * 1024
READ_SIZE = 65535 + 10  # the largest IP packet and its virtio_net_hdr
IP_MTU_DISCOVER = 10  # <linux/in.h>, not in Python's socket module
IP_PMTUDISC_DONT = 0


def pump(read: Callable[[int], bytes], write: Callable[[bytes], object]) -> None:
    """Move each read to `write` until the process ends. A failed call loses at most a packet
    (a full buffer, EMSGSIZE; a socket reporting an ICMP error about an earlier datagram, as
    before the peer's relay is up), which TCP sends again."""
    while True:
        try:
            write(read(READ_SIZE))
        except OSError:
            continue


def main(argv: Sequence[str]) -> int:
    device, local, port, remote = argv
    tun = TunEndpoint(device, vnet_hdr=True, attempts=(TCP_OFFLOADS,))
    tun.set_offload(tun.accepted)
    fd = tun.fileno()
    os.set_blocking(fd, True)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        sock.setsockopt(socket.SOL_SOCKET, option, BUFFER)
    # fragment datagrams larger than the path (a super-packet) instead of refusing them
    sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)
    sock.bind((local, int(port)))
    sock.connect((remote, int(port)))
    for read, write in (((lambda size: os.read(fd, size)), sock.send),
                        (sock.recv, (lambda data: os.write(fd, data)))):
        threading.Thread(target=pump, args=(read, write), daemon=True).start()
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    return 0


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    sys.exit(main(sys.argv[1:]))
