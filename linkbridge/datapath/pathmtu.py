"""How large a frame the endpoint below sends whole: asked through the PathMtu capability, or,
at the bottom of a stack, of the UDP socket connected to the peer (its route's MTU)."""

from __future__ import annotations

import socket

from linkbridge.datapath.endpoint import Endpoint, PathMtu, RawPortProvider
from linkbridge.datapath.rawport import SocketPort

IP_MTU = 14  # getsockopt: the path MTU of a connected IPv4 socket (<linux/in.h>)
IPV6_MTU = 24  # the same for IPv6 (<linux/in6.h>)
UDP_OVERHEAD = {socket.AF_INET: 28, socket.AF_INET6: 48}  # IP and UDP headers


def path_frame_size(below: Endpoint, frame_size: int) -> int:
    """`frame_size`, or less where `below` says its path is narrower (PathMtu), or where it is a
    UDP socket connected to the peer whose route has a smaller MTU (an IPv6 underlay takes 20
    bytes less per datagram than an IPv4 one): a frame must never be fragmented by IP."""
    if isinstance(below, PathMtu):
        return below.path_frame_size(frame_size)
    port = below.raw_port() if isinstance(below, RawPortProvider) else None
    if not isinstance(port, SocketPort) or port.conn is None:
        return frame_size
    family = port.conn.family
    level, option = ((socket.IPPROTO_IPV6, IPV6_MTU) if family == socket.AF_INET6
                     else (socket.IPPROTO_IP, IP_MTU))
    try:
        path_mtu = port.conn.getsockopt(level, option)
    except OSError:
        return frame_size
    return min(frame_size, path_mtu - UDP_OVERHEAD.get(family, 48))
