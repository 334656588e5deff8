"""Encrypted test peers of a multipoint hub (`python -m benchmarks peers`, and its short form
in tests/integration/test_peer_scale.py): each is linkbridge's own encrypt layer over a UDP
socket of its own, all in one process with one handshake thread, so the hub meets the real
wire protocol, handshakes included, from 100 stations without 100 tunnels.

Each peer pings the hub and the next peer (through the hub, which forwards IP), answers the
pings it gets, and the figures are the seconds until every hub session was established and
the pings answered.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from linkbridge.datapath.datagram import DatagramEndpoint
from linkbridge.datapath.encrypting import EncryptingEndpoint
from linkbridge.datapath.handshakes import HandshakeScheduler
from linkbridge.lab import netns
from linkbridge.lab.probes import echo_reply_seq, echo_request
from linkbridge.wire.keys import StaticKeys
from linkbridge.wire.packet import internet_checksum
from linkbridge.wire.secure import Timers

ICMP = 1
ECHO_REPLY, ECHO_REQUEST = 0, 8
IDENT = 0x5050
LOOK_INTERVAL = 0.2  # seconds between two looks at the hub's sessions


def ip_packet(source: str, destination: str, payload: bytes, protocol: int = ICMP) -> bytes:
    """An IPv4 packet with its header checksum."""
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, protocol, 0,
                         socket.inet_aton(source), socket.inet_aton(destination))
    return header[:10] + internet_checksum(header).to_bytes(2, "big") + header[12:] + payload


def answer(packet: bytes) -> bytes | None:
    """The echo reply to an IPv4 echo request, else None."""
    if len(packet) < 28 or packet[9] != ICMP or packet[20] != ECHO_REQUEST:
        return None
    message = bytearray(packet[20:])
    message[0], message[2:4] = ECHO_REPLY, b"\0\0"
    message[2:4] = internet_checksum(bytes(message)).to_bytes(2, "big")
    return ip_packet(socket.inet_ntoa(packet[16:20]), socket.inet_ntoa(packet[12:16]),
                     bytes(message))


@dataclass(frozen=True)
class Pings:
    """What the peers' pings found: seconds until every hub session was established, and how
    many pings to the hub and to the next peer were answered."""

    sessions_s: float
    hub_answered: int
    peer_answered: int


@contextlib.contextmanager
def encrypted_peers(host: str, address: str, first_port: int, hub: tuple[str, int],
                    hub_public: bytes, privates: Sequence[X25519PrivateKey]
                    ) -> Iterator[list[EncryptingEndpoint]]:
    """A peer per private key, on `address`:`first_port` + N in namespace `host`, each with
    its session to `hub` (its first initiation sent), one handshake thread for all."""
    with contextlib.ExitStack() as stack:
        scheduler = HandshakeScheduler("test peers")
        stack.callback(scheduler.close)
        layers = []
        for index, private in enumerate(privates):
            with netns.inside(host):
                link = DatagramEndpoint(f"p{index}", (address, first_port + index), hub)
            stack.callback(link.close)
            layer = EncryptingEndpoint(link, StaticKeys(private, hub_public), Timers(),
                                       scheduler=scheduler)
            layer.start()
            stack.callback(layer.stop_timers)
            layers.append(layer)
        yield layers


def ping_around(layers: Sequence[EncryptingEndpoint], addresses: Sequence[str],
                hub_address: str, established: Callable[[], int], timeout: float) -> Pings:
    """Each peer (its tunnel address in `addresses`) pings the hub, then the next peer; every
    echo request a peer gets is answered. `established()` counts the hub's established
    sessions."""
    start = time.monotonic()
    count = len(layers)
    for index, layer in enumerate(layers):
        layer.send(ip_packet(addresses[index], hub_address, echo_request(IDENT, index, b"hub")))
    hub_answered: set[int] = set()
    peer_answered: set[int] = set()
    sessions_s = -1.0
    asked_peers = False
    looked = start
    while time.monotonic() - start < timeout:
        for index, layer in enumerate(layers):
            for packet in layer.receive(0):
                reply = answer(packet)
                if reply is not None:
                    layer.send(reply)
                elif echo_reply_seq(packet, IDENT) is not None:
                    source = socket.inet_ntoa(packet[12:16])
                    (hub_answered if source == hub_address else peer_answered).add(index)
        if sessions_s < 0 and time.monotonic() - looked >= LOOK_INTERVAL:
            looked = time.monotonic()
            if established() == count:
                sessions_s = looked - start
        if len(hub_answered) == count and not asked_peers:
            asked_peers = True
            for index, layer in enumerate(layers):
                to = addresses[(index + 1) % count]
                layer.send(ip_packet(addresses[index], to, echo_request(IDENT, index, b"peer")))
        if sessions_s >= 0 and len(peer_answered) == count:
            break
        time.sleep(0.005)
    return Pings(sessions_s, len(hub_answered), len(peer_answered))
