"""The in-memory doubles of linkbridge.testing on the wall clock and in threads: `receive` waits
for its timeout, a packet or close; the datapath's Bridge threads move packets between them."""

from __future__ import annotations

import threading
import time

from linkbridge.datapath.bridge import Bridge
from linkbridge.testing import MemoryEndpoint, PollableMemoryEndpoint, connect

PACKET = bytes([0x45, 0, 0, 24]) + bytes(20)  # a well-formed IPv4 packet of 24 bytes


def test_receive_waits_for_its_timeout_or_a_packet_or_close() -> None:
    end = MemoryEndpoint()
    started = time.monotonic()
    assert end.receive(0.1) == []
    assert time.monotonic() - started >= 0.1
    threading.Timer(0.05, end.feed, args=(b"late",)).start()
    started = time.monotonic()
    assert end.receive(10.0) == [b"late"]
    threading.Timer(0.05, end.close).start()
    assert end.receive(10.0) == []
    assert time.monotonic() - started < 5.0
    assert end.closed
    end.close()  # twice is fine


def test_bridge_moves_packets_between_pollable_and_plain_endpoints() -> None:
    tunnel, far_tunnel = connect(PollableMemoryEndpoint("tun"), MemoryEndpoint("kernel"))
    link, far_link = connect(MemoryEndpoint("link"), PollableMemoryEndpoint("peer"))
    bridge = Bridge(tunnel, link)
    bridge.start()
    try:
        far_tunnel.send(PACKET)
        far_link.send(PACKET + b"!")  # its length field disagrees: dropped on the link side
        far_link.send(PACKET)
        assert far_link.receive(5.0) == [PACKET]
        assert far_tunnel.receive(5.0) == [PACKET]
    finally:
        for end in (tunnel, far_tunnel, link, far_link):
            end.close()
        bridge.close()
    assert sum(link.counters.drops.values()) == 1
