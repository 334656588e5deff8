"""The encrypt layer's fuzz targets (wire/secure.py): handshake messages, and transport data
with the frame-type dispatch in front of it.

A fuzzer cannot forge a MAC or an AEAD tag, so the harness lends it the peer's hand: a step can
have the handshake message's mac1 made right for this side, or a plaintext sealed with the
peer's session key, and the decoder is then driven past those checks. Whatever the fuzzer
sends, a packet comes out only when the real peer sealed it (authenticity), and every frame
that fails a check is a counted drop under a declared reason.
"""

from __future__ import annotations

import random

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from benchmarks.fuzz_steps import counted, expect, join, split
from benchmarks.fuzz_targets import DROP, Harness, Target
from linkbridge.wire import drops
from linkbridge.wire.noise import blake2s, public_bytes
from linkbridge.wire.secure import (
    CHACHA20_POLY1305,
    COUNTER_LIMIT,
    COUNTER_SIZE,
    LABEL_MAC1,
    MAC_SIZE,
    Keypair,
    SecureChannel,
    StaticKeys,
    Timers,
    hmac_blake2s,
)

TIMERS = Timers(rekey_after=120.0, retry=5.0)
WALL = 1_700_000_000 * 10**9  # the wall clock (ns) both sides read
OUR_SEED, PEER_SEED = 7, 8  # their randomness: the same ephemeral keys and ids every input
OUR_ID, PEER_ID = 3, 11  # the transport sessions' key ids
TO_US, TO_PEER = bytes(range(32)), bytes(range(32, 64))  # their transport keys


def private_key(seed: int) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(random.Random(seed).randbytes(32))


OURS, PEERS = private_key(1), private_key(2)


def channel(private: X25519PrivateKey, peer: X25519PrivateKey, seed: int) -> SecureChannel:
    """A fresh channel whose drops must be declared ones, with seeded randomness."""
    return SecureChannel(StaticKeys(private, public_bytes(peer)), TIMERS,
                         counted(drops.REASONS), random.Random(seed).randbytes, lambda: WALL)


def with_mac1(frame: bytes, public: bytes) -> bytes:
    """`frame` with its mac1 made right for the side of `public` (the rest as it is)."""
    body = frame[:-MAC_SIZE]
    return body + hmac_blake2s(blake2s(LABEL_MAC1, public), body)[:MAC_SIZE]


# --- handshake messages ------------------------------------------------------------------------

PEER_PACKET = b"E" + bytes(27)  # what the peer seals in the seed's transport frame


def handshake_harness() -> Harness:
    """Per input, our side starts (its initiation pending). Steps: op % 3 == 0 opens the frame,
    1 opens it with mac1 made right, 2 lets frame[0] seconds pass (then tick())."""
    public = public_bytes(OURS)

    def run(data: bytes) -> None:
        ours = channel(OURS, PEERS, OUR_SEED)
        now = 1.0
        ours.start(now)
        ours.work(now)
        for op, frame in split(data):
            if op % 3 == 2:
                now += frame[0] if frame else 1.0
                ours.tick(now)
            else:
                packet, _answers = ours.open(with_mac1(frame, public) if op % 3 else frame, now)
                expect(packet in (None, PEER_PACKET), f"a packet nobody sealed: {packet!r}")
            ours.work(now)  # the handshake jobs the frame or the time made

    return run


def handshake_seeds() -> list[bytes]:
    """The peer's initiation; its response to our initiation (as the harness makes it), then
    its first transport frame; both crossing."""
    def started(side: SecureChannel, now: float) -> bytes:
        side.start(now)
        return side.work(now)[0]

    def answer(side: SecureChannel, frame: bytes, now: float) -> list[bytes]:
        return [*side.open(frame, now)[1], *side.work(now)]

    ours, peer = channel(OURS, PEERS, OUR_SEED), channel(PEERS, OURS, PEER_SEED)
    initiation = started(peer, 0.5)
    our_initiation = started(ours, 1.0)
    responder = channel(PEERS, OURS, PEER_SEED)
    response = answer(responder, our_initiation, 1.0)[0]
    for frame in answer(ours, response, 1.0):
        responder.open(frame, 1.0)
    data = responder.seal(PEER_PACKET, 1.0)[0]
    return [join([(0, initiation)]), join([(0, response), (0, data)]),
            join([(0, initiation), (0, response), (2, b"\x06"), (1, initiation)]),
            join([(2, b"\xc8"), (0, response), (0, data)])]


# --- transport data and the frame-type dispatch ------------------------------------------------

def data_harness() -> Harness:
    """Per input, a session with the peer is up. Steps: op % 4 == 0 the frame as it is, 1 the
    frame sealed by the peer, 2 its frame[3:] sealed at counter frame[:3], 3 lets frame[0]
    seconds pass (then tick()). op & 0x80 holds the frame for one open_many() batch with the
    next ones (the data path's fast path); op & 0x40 takes the lean loop's way, open_current()
    and open() for what it leaves; the others go through open()."""

    def run(data: bytes) -> None:
        ours = channel(OURS, PEERS, OUR_SEED)
        ours.current = Keypair(OUR_ID, PEER_ID, TO_PEER, TO_US, CHACHA20_POLY1305, 0.0, False,
                               TIMERS)
        peer = Keypair(PEER_ID, OUR_ID, TO_US, TO_PEER, CHACHA20_POLY1305, 0.0, True, TIMERS)
        sealed: set[bytes] = set()
        batch: list[bytes] = []
        now, in_order = 1.0, True

        def check(packets: list[bytes | None]) -> None:
            for packet in packets:
                expect(packet is None or packet in sealed, f"a packet nobody sealed: {packet!r}")

        for op, frame in split(data):
            kind = op % 4
            if kind == 3:
                now += frame[0] if frame else 1.0
                ours.tick(now)
                continue
            if kind == 2:
                in_order = False  # later counters may be behind the window
                peer.counter = int.from_bytes(frame[:COUNTER_SIZE], "big")
                frame = frame[COUNTER_SIZE:]
            plain = frame
            if kind and peer.counter < COUNTER_LIMIT:
                sealed.add(plain)
                frame = peer.seal(plain)
            if op & 0x80:
                batch.append(frame)
                continue
            if batch:
                check(list(ours.open_many(batch, now)[0]))
                batch.clear()
            session = ours.current is not None and now < ours.current.expires
            packet = ours.open_current(frame, now) if op & 0x40 else None
            packet = ours.open(frame, now)[0] if packet is None else (packet or None)
            check([packet])
            if kind == 1 and in_order and session and frame is not plain:
                expect(packet == (plain or None), "a frame the peer sealed was not delivered")
        if batch:
            check(list(ours.open_many(batch, now)[0]))

    return run


def data_seeds() -> list[bytes]:
    packets = [b"E" + bytes(27), b"`" + bytes(50)]
    return [join([(1, packets[0]), (0x81, packets[1]), (0x81, packets[0]), (1, b"")]),
            join([(0x41, packets[0]), (0x41, packets[0]), (0x40, b"\xb3" + bytes(30)),
                  (0x41, b""), (0x42, b"\x00\x00\x01" + packets[1])]),
            join([(2, b"\x00\x10\x00" + packets[0]), (2, b"\x00\x0f\x00" + packets[1]),
                  (3, b"\xff"), (1, packets[0])]),
            join([(0, bytes((0xB3,)) + bytes(30)), (0, bytes((0x80,)) + bytes(121)),
                  (0, bytes((0x90,)) + bytes(66)), (0, b"\x45"), (0, b"")])]


SECURE = ("linkbridge.wire.secure", "linkbridge.wire.noise", "linkbridge.wire.replay")
TARGETS = (
    Target("handshake", "handshake initiations and responses (wire/secure.py, noise.py)",
           f"None (a session, or {DROP}) and answers; a packet only as the peer sealed it",
           handshake_harness, handshake_seeds, covers=SECURE),
    Target("encrypt-data", "transport data, replay window, frame-type dispatch (wire/secure.py)",
           f"the peer's packets, None (keepalive, handshake) or {DROP}; nothing unsealed",
           data_harness, data_seeds, covers=SECURE),
)
