"""The static keys of the encrypt layer as values: base64 text, and the checks that refuse a
key no handshake could use (docs/security.md, "Keys"). Pure; key files are ops/keys.py."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from linkbridge.errors import ConfigError
from linkbridge.wire.ciphers import CHACHA20_POLY1305, CIPHERS
from linkbridge.wire.noise import KEY_SIZE, ZERO_PSK, public_bytes

FIELD_PRIME = 2**255 - 19  # Curve25519's; a public key is a number below it, little-endian


def decode_key(text: str, what: str) -> bytes:
    """A 32-byte key from its base64 text (as `linkbridge genkey` writes); ConfigError."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{what} is not base64") from None
    if len(key) != KEY_SIZE:
        raise ConfigError(f"{what} is {len(key)} bytes, not {KEY_SIZE} (give a key made by "
                          "`linkbridge genkey`)")
    return key


def encode_key(key: bytes) -> str:
    return base64.b64encode(key).decode()


def check_peer_public(private: X25519PrivateKey, peer: bytes) -> None:
    """ConfigError for a peer public key no handshake can use: not a canonical Curve25519
    number (no `linkbridge pubkey` writes one), a low-order point (every Diffie-Hellman with
    it gives zero), or this side's own key."""
    if int.from_bytes(peer, "little") >= FIELD_PRIME:
        raise ConfigError(f"the peer public key {encode_key(peer)} is not a Curve25519 public "
                          "key (a number past the field's prime): give the output of "
                          "`linkbridge pubkey` on the peer's private key")
    if peer == public_bytes(private):
        raise ConfigError("the peer public key is this side's own public key: give the "
                          "peer's (`linkbridge pubkey` on the peer)")
    try:
        private.exchange(X25519PublicKey.from_public_bytes(peer))
    except ValueError:  # pyca refuses the all-zero secret of a low-order point
        raise ConfigError(f"the peer public key {encode_key(peer)} is a low-order point, not "
                          "a real key (an attacker's choice: every shared secret would be "
                          "zero): give the output of `linkbridge pubkey` on the peer's "
                          "private key") from None


def check_psk(psk: bytes, private: X25519PrivateKey) -> None:
    """ConfigError for a pre-shared key that protects nothing: all zeros (what "no pre-shared
    key" mixes in) or this side's private key (a file mix-up that would send it to the peer's
    operator)."""
    if psk == ZERO_PSK:
        raise ConfigError("the pre-shared key is all zeros, which is no pre-shared key: make "
                          "one with `linkbridge genpsk`, or leave --preshared-key out")
    if psk == private.private_bytes_raw():
        raise ConfigError("the pre-shared key file holds this side's private key: give the "
                          "file `linkbridge genpsk` made (the same on both sides)")


@dataclass(frozen=True)
class StaticKeys:
    """This side's private key, the peer's public key and the pre-shared key (zeros: none),
    checked: a key no handshake could use is a ConfigError here, before anything runs."""

    private: X25519PrivateKey
    peer_public: bytes
    psk: bytes = ZERO_PSK
    ciphers: frozenset[str] = frozenset({CHACHA20_POLY1305})  # the transport ciphers allowed
    public: bytes = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "public", public_bytes(self.private))
        check_peer_public(self.private, self.peer_public)
        if not self.ciphers or not self.ciphers <= CIPHERS.keys():
            raise ConfigError(f"ciphers must be some of {', '.join(CIPHERS)}, "
                              f"not {', '.join(sorted(self.ciphers)) or 'none'}")
