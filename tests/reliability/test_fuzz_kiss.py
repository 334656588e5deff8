"""The kiss: link's receive chain (KISS decoder, then a payload mode) on hostile line noise: it
never raises, never grows, and noise never turns into a packet for the tunnel.

With `--long` the seeded noise runs 40x longer.
"""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st
from linkbridge_kiss import arp
from linkbridge_kiss.ax25 import Callsign
from linkbridge_kiss.payload import (
    Ax25Mode,
    EthernetMode,
    PayloadMode,
    RawMode,
    TunHeaderMode,
)

from linkbridge.framing.events import Lost
from linkbridge.framing.kiss import FEND, KissDecoder, encode_data, flex_frame, smack_frame
from linkbridge.wire.packet import packet_problem

MTU = 576
A, B = Callsign.parse("N0CALL-1"), Callsign.parse("N0CALL-2")
MAC_A, MAC_B = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")


def mode_pairs() -> dict[str, tuple[PayloadMode, PayloadMode]]:
    """(sender, receiver) of every mode."""
    any_address = arp.AddressSet(None)
    return {"raw": (RawMode(), RawMode()), "tun": (TunHeaderMode(), TunHeaderMode()),
            "ethernet": (EthernetMode(MAC_A, any_address), EthernetMode(MAC_B, any_address)),
            "ax25": (Ax25Mode(A, B, any_address), Ax25Mode(B, A, any_address))}


def to_tunnel(decoder: KissDecoder, mode: PayloadMode, data: bytes) -> list[bytes]:
    """What the link would hand the tunnel, after the tunnel's own packet check."""
    delivered = []
    for payload in decoder.feed(data):
        if isinstance(payload, Lost):
            continue
        packet = mode.unwrap(payload).packet
        if packet is not None and packet_problem(packet) is None:
            delivered.append(packet)
    return delivered


@given(st.lists(st.binary(max_size=3000), max_size=20), st.integers(1, 2000),
       st.sampled_from(["raw", "tun", "ethernet", "ax25"]))
def test_receive_chain_never_raises_and_stays_bounded(chunks: list[bytes], mtu: int,
                                                      name: str) -> None:
    _sender, receiver = mode_pairs()[name]
    limit = mtu + receiver.received_overhead
    decoder = KissDecoder(limit)
    for chunk in chunks:
        to_tunnel(decoder, receiver, chunk)
        assert decoder.buffered <= 2 * (limit + 3)


def noise(rng: random.Random, size: int, fend_density: float) -> bytes:
    """Random bytes in which a fraction `fend_density` of the bytes are FEND."""
    data = bytearray(rng.randbytes(size).replace(bytes([FEND]), b"\x55"))
    for index in rng.sample(range(size), int(size * fend_density)):
        data[index] = FEND
    return bytes(data)


def test_noise_never_reaches_the_tunnel_and_real_packets_survive(long_run: bool) -> None:
    """Packets in every mode (and mkiss's SMACK/FlexNet variants) between bursts of seeded
    noise, fed in random chunks: exactly the packets sent come out, the noise is counted."""
    rounds = 40_000 if long_run else 1_000
    for name, (sender, receiver) in mode_pairs().items():
        rng = random.Random(name)
        sent: list[bytes] = []
        stream = bytearray()
        for _ in range(rounds):
            stream += noise(rng, rng.randrange(0, 200), rng.choice((0.0, 0.004, 0.06)))
            body = rng.randbytes(rng.randrange(0, MTU - 20))
            packet = bytes([0x45, 0]) + (len(body) + 20).to_bytes(2, "big") + bytes(16) + body
            sent.append(packet)
            stream += rng.choice((encode_data, smack_frame, flex_frame))(sender.wrap(packet))
        decoder = KissDecoder(MTU + receiver.received_overhead)
        delivered: list[bytes] = []
        position = 0
        while position < len(stream):
            size = rng.randrange(1, 2048)
            delivered += to_tunnel(decoder, receiver, bytes(stream[position:position + size]))
            position += size
        assert delivered == sent, name
        assert sum(decoder.errors.values()) > 0
