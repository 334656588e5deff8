"""The expensive steps of the encrypt layer's handshakes, as jobs that hold everything they need:
`run()` does the Diffie-Hellman work and touches no channel state, so the glue runs it without
the lock the data path takes (the data path never waits for a handshake). SecureChannel
(wire/secure.py) makes a job under that lock (`take_job`) and applies its result under it
(`finish`). Pure: random bytes and the time come in with the job.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.constant_time import bytes_eq

from linkbridge.wire import drops
from linkbridge.wire.ciphers import (
    CIPHERS,
    COSTS_SIZE,
    Costs,
    choose_cipher,
    cipher_names,
    decode_costs,
)
from linkbridge.wire.keys import StaticKeys
from linkbridge.wire.noise import KEY_SIZE, TAG_SIZE, Handshake, HandshakeFailed

PROLOGUE = b"linkbridge encrypt v1"
MAC_SIZE = 16
TIMESTAMP_SIZE = 8  # nanoseconds since the Unix epoch, big-endian
CIPHER_SIZE = 1  # the transport ciphers an initiation offers, the one its response chose
INITIATION_SIZE = (1 + KEY_SIZE + KEY_SIZE + TAG_SIZE + TIMESTAMP_SIZE + CIPHER_SIZE + COSTS_SIZE
                   + TAG_SIZE + MAC_SIZE)  # 124, and a cookie's mac2 may follow
# an initiation without the costs (linkbridge before they were measured), still answered
LEGACY_INITIATION_SIZE = INITIATION_SIZE - COSTS_SIZE  # 122
RESPONSE_SIZE = 1 + 1 + KEY_SIZE + CIPHER_SIZE + TAG_SIZE + MAC_SIZE  # 67


@dataclass
class Pending:
    """An initiation we sent and wait to see answered."""

    handshake: Handshake
    ephemeral: X25519PrivateKey
    local_id: int
    sent_at: float
    attempts: int
    mac1: bytes = b""  # the associated data of a cookie reply to it
    with_mac2: bool = False  # it carried a cookie's mac2


@dataclass
class Initiation:
    """Our next initiation: written by run() (two Diffie-Hellman operations)."""

    keys: StaticKeys
    ephemeral: X25519PrivateKey
    payload: bytes  # the timestamp, the ciphers offered and their costs
    attempts: int  # of the initiation it replaces (0: a new round)
    handshake: Handshake = field(init=False)
    body: bytes = b""

    def run(self) -> None:
        keys = self.keys
        self.handshake = Handshake(PROLOGUE, keys.peer_public, keys.psk)
        self.body = self.handshake.write_initiation(keys.private, self.ephemeral,
                                                    keys.peer_public, self.payload)


@dataclass
class InitiationRead:
    """An initiation the rate limits admitted: run() authenticates it (read()) and, when it is
    from the peer, newer than `newest` and offers a cipher we allow, chooses the cipher
    (ciphers.choose_cipher) and writes the response's body (four Diffie-Hellman operations in
    all). `failed`: the drop reason otherwise."""

    keys: StaticKeys
    frame: bytes  # the message, mac1 included (INITIATION_SIZE or LEGACY_INITIATION_SIZE)
    offer: int  # the ciphers this side allows
    costs: Costs  # this side's cost bytes
    newest: bytes = b""  # the newest timestamp accepted from the peer when the job was taken
    ephemeral: X25519PrivateKey | None = None  # for the response, given when it is taken
    failed: str = ""
    stamp: bytes = b""
    peer_offer: int = 0
    remote_static: bytes = b""
    cipher: str = ""
    body: bytes = b""
    to_peer: bytes = b""
    to_us: bytes = b""

    def run(self) -> None:
        handshake = self.read()
        if handshake is None:
            return
        assert self.ephemeral is not None  # take_job() gave it
        self.body = handshake.write_response(self.ephemeral, bytes((CIPHERS[self.cipher][0],)))
        self.to_peer, self.to_us = handshake.split()

    def read(self) -> Handshake | None:
        """Authenticate the initiation (two Diffie-Hellman operations): the handshake read so
        far when it is from the peer, newer than `newest` and offers a cipher we allow (then
        `cipher` is set); None, `failed` set, otherwise."""
        keys = self.keys
        handshake = Handshake(PROLOGUE, keys.public, keys.psk)
        try:
            payload = handshake.read_initiation(keys.private, self.frame[1:-MAC_SIZE])
        except HandshakeFailed:
            self.failed = drops.HANDSHAKE_AUTH
            return None
        self.remote_static = handshake.remote_static
        if not bytes_eq(handshake.remote_static, keys.peer_public):
            self.failed = drops.HANDSHAKE_PEER
            return None
        self.stamp, self.peer_offer = payload[:TIMESTAMP_SIZE], payload[TIMESTAMP_SIZE]
        if self.stamp <= self.newest:
            self.failed = drops.HANDSHAKE_REPLAY  # before the response's Diffie-Hellman
            return None
        cipher = choose_cipher(self.peer_offer & self.offer, self.costs,
                               decode_costs(payload[TIMESTAMP_SIZE + CIPHER_SIZE:]))
        if cipher is None:
            self.failed = drops.HANDSHAKE_CIPHER
            return None
        self.cipher = cipher
        return handshake


@dataclass
class ResponseRead:
    """A response to `pending` the rate limits admitted: run() authenticates it (two
    Diffie-Hellman operations) on a copy of the pending handshake, so a forged one leaves the
    original intact."""

    keys: StaticKeys
    frame: bytes
    pending: Pending
    offer: int
    failed: str = ""
    chosen: int = 0
    cipher: str = ""
    to_peer: bytes = b""
    to_us: bytes = b""

    def run(self) -> None:
        handshake = copy.copy(self.pending.handshake)
        try:
            self.chosen = handshake.read_response(self.keys.private, self.pending.ephemeral,
                                                  self.frame[2:-MAC_SIZE])[0]
        except HandshakeFailed:
            self.failed = drops.HANDSHAKE_AUTH
            return
        names = cipher_names(self.chosen)
        if len(names) != 1 or not self.chosen & self.offer:
            self.failed = drops.HANDSHAKE_CIPHER
            return
        self.cipher = names[0]
        self.to_peer, self.to_us = handshake.split()


Job = Initiation | InitiationRead | ResponseRead
