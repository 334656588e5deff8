"""Extension frames (docs/architecture.md, "Extension frames") sent into a real tunnel over a
real UDP link: whatever their subtype or version, none reaches the TUN device, each is counted
as `unknown_extension` on the link side, and an IP packet sent after them still passes."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable

from linkbridge.lab import netns
from linkbridge.lab.processes import LinkbridgeProcess
from linkbridge.lab.run import tunnel_args
from linkbridge.lab.topology import OVERLAY, UNDERLAY, TwoHosts
from linkbridge.ops.status import collect_status
from linkbridge.ops.status_data import TunnelStatus
from linkbridge.plugin.url import parse_link_url
from linkbridge.wire.drops import UNKNOWN_EXTENSION
from linkbridge.wire.frames import (
    EXTENSION,
    EXTENSION_BYTE,
    EXTENSIONS,
    IPV4,
    extension_header,
    frame_byte,
    type_nibble,
)
from linkbridge.wire.packet import internet_checksum

PORT = 47310


def echo_request(source: str, destination: str, ident: int) -> bytes:
    """An IPv4 ICMP echo request with valid checksums."""
    icmp = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"after the extension frames"
    icmp = icmp[:2] + internet_checksum(icmp).to_bytes(2, "big") + icmp[4:]
    header = struct.pack("!BBHHHBBH4s4s", frame_byte(IPV4, 5), 0, 20 + len(icmp), ident, 0, 64,
                         socket.IPPROTO_ICMP, 0, socket.inet_aton(source),
                         socket.inet_aton(destination))
    header = header[:10] + internet_checksum(header).to_bytes(2, "big") + header[12:]
    return header + icmp


def status_until(done: Callable[[TunnelStatus], bool], timeout: float = 5.0) -> TunnelStatus:
    """The tunnel's status once `done` holds for it (or at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        [tunnel] = collect_status()
        if done(tunnel) or time.monotonic() > deadline:
            return tunnel
        time.sleep(0.05)


def test_extension_frames_are_counted_and_never_reach_the_device(lab: TwoHosts,
                                                                 run_dir: object) -> None:
    url = parse_link_url(f"udp:{UNDERLAY[1]}:{PORT}")
    frames = [extension_header(kind.subtype) + b"reserved, taken by no layer yet"
              for kind in EXTENSIONS]
    frames += [extension_header(0xFF) + b"unassigned",
               bytes((frame_byte(EXTENSION, 1), EXTENSIONS[0].subtype)) + b"a later version",
               bytes((EXTENSION_BYTE,))]
    with LinkbridgeProcess(lab.a, tunnel_args(url, (), None, OVERLAY[0], OVERLAY[1]), "A"), \
            netns.inside(lab.b):
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with peer:
            peer.bind((UNDERLAY[1], PORT))
            peer.settimeout(5.0)
            for frame in frames:
                peer.sendto(frame, (UNDERLAY[0], PORT))
            counted = status_until(
                lambda t: t.link_side.drops.get(UNKNOWN_EXTENSION, 0) >= len(frames))
            assert counted.link_side.drops == {UNKNOWN_EXTENSION: len(frames)}, counted
            assert counted.tunnel.tx_packets == 0  # nothing written into the TUN device
            peer.sendto(echo_request(OVERLAY[1], OVERLAY[0], 7), (UNDERLAY[0], PORT))
            while True:  # A's kernel answers through the tunnel (IPv6 noise aside)
                reply = peer.recv(2048)
                if type_nibble(reply[0]) == IPV4 and reply[9] == socket.IPPROTO_ICMP:
                    break
    assert reply[20] == 0 and socket.inet_ntoa(reply[16:20]) == OVERLAY[1]  # an echo reply
