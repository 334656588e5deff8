"""A tncattach stand-in for the tests: KISS on a serial line joined to a kernel network device.

Written from tncattach's documented behaviour (its README and man page), not from linkbridge's
code: every KISS data frame (FEND, command 0x00, the escaped frame, FEND) carries what the
device gives. In point-to-point mode (tncattach's default) the device is a TUN device with the
kernel's 4-byte packet information header (flags, EtherType) before each packet; with
`--ethernet` it is a TAP device, and frames are Ethernet frames, so the kernel's own ARP
decides where packets go. A received frame is written to the device as it is. `--noipv6` drops
IPv6 from the device, as tncattach's option does. Run it as a program inside a namespace:

    python tests/helpers/tnc_peer.py LINE --name tnc0 --mtu 256 --address 198.19.0.2/24 [--ethernet]

It prints READY once the device is up and the line open, and runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import select
import signal
import struct
import sys

from pyroute2 import IPRoute

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_TAP, IFF_NO_PI = 0x0001, 0x0002, 0x1000
FEND, FESC, TFEND, TFESC = 0xC0, 0xDB, 0xDC, 0xDD
DATA = 0x00


def kiss_frame(data: bytes) -> bytes:
    """One KISS data frame on port 0."""
    escaped = bytes([DATA]) + data
    escaped = escaped.replace(bytes([FESC]), bytes([FESC, TFESC]))
    escaped = escaped.replace(bytes([FEND]), bytes([FESC, TFEND]))
    return bytes([FEND]) + escaped + bytes([FEND])


class KissReader:
    """Bytes from the line in, the data of whole port-0 data frames out."""

    def __init__(self) -> None:
        self.pending = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self.pending += data
        *frames, rest = bytes(self.pending).split(bytes([FEND]))
        self.pending = bytearray(rest)
        out = []
        for frame in frames:
            if not frame or frame[0] != DATA:
                continue
            body = frame[1:].replace(bytes([FESC, TFEND]), bytes([FEND]))
            out.append(body.replace(bytes([FESC, TFESC]), bytes([FESC])))
        return out


def open_device(name: str, ethernet: bool) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR)
    flags = IFF_TAP | IFF_NO_PI if ethernet else IFF_TUN  # tncattach: TUN keeps the header
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), flags))
    return fd


def configure(name: str, mtu: int, address: str) -> None:
    host, prefix = address.split("/")
    with IPRoute() as ip:
        index = ip.link_lookup(ifname=name)[0]
        ip.link("set", index=index, mtu=mtu)
        ip.addr("add", index=index, address=host, prefixlen=int(prefix))
        ip.link("set", index=index, state="up")


def is_ipv6(data: bytes, ethernet: bool) -> bool:
    return data[12:14] == b"\x86\xdd" if ethernet else data[2:4] == b"\x86\xdd"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("line")
    parser.add_argument("--name", default="tnc0")
    parser.add_argument("--mtu", type=int, default=256)
    parser.add_argument("--address", required=True)
    parser.add_argument("--ethernet", action="store_true")
    parser.add_argument("--noipv6", action="store_true")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    device = open_device(args.name, args.ethernet)
    configure(args.name, args.mtu, args.address)
    line = os.open(args.line, os.O_RDWR | os.O_NOCTTY)
    reader = KissReader()
    print("READY", flush=True)
    poller = select.poll()
    poller.register(device, select.POLLIN)
    poller.register(line, select.POLLIN)
    while True:
        for fd, _event in poller.poll():
            if fd == device:
                data = os.read(device, 65536)
                if not (args.noipv6 and is_ipv6(data, args.ethernet)):
                    os.write(line, kiss_frame(data))
                continue
            for frame in reader.feed(os.read(line, 65536)):
                with contextlib.suppress(OSError):  # a frame the kernel refuses: ignored
                    os.write(device, frame)


if __name__ == "__main__":
    main(sys.argv[1:])
