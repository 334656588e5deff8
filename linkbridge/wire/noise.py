"""The Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s handshake (the Noise Protocol Framework, rev. 34),
the pattern WireGuard uses, built on pyca `cryptography` primitives only.

    IKpsk2:
      <- s
      ...
      -> e, es, s, ss
      <- e, ee, se, psk

`Handshake` holds one side's symmetric state; `write_initiation`/`read_initiation` and
`write_response`/`read_response` are the two messages, and `split()` gives the two transport
keys. Ephemeral keys come from the caller (randomness is passed in). Pure: no I/O.
tests/unit/test_noise.py checks this against the published cacophony test vector.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

PROTOCOL_NAME = b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
KEY_SIZE = 32  # X25519 keys, ChaCha20 keys, BLAKE2s digests
TAG_SIZE = 16  # Poly1305
ZERO_PSK = bytes(KEY_SIZE)  # "no pre-shared key", as WireGuard mixes in


class HandshakeFailed(Exception):
    """A handshake message that does not authenticate (wrong keys, tampering)."""


def blake2s(*parts: bytes) -> bytes:
    digest = hashes.Hash(hashes.BLAKE2s(KEY_SIZE))
    for part in parts:
        digest.update(part)
    return digest.finalize()


def hmac_blake2s(key: bytes, data: bytes) -> bytes:
    mac = hmac.HMAC(key, hashes.BLAKE2s(KEY_SIZE))
    mac.update(data)
    return mac.finalize()


def hkdf(chaining_key: bytes, material: bytes, outputs: int) -> list[bytes]:
    """Noise's HKDF(ck, ikm, n): RFC 5869 HKDF-BLAKE2s with ck as salt and empty info."""
    okm = HKDF(hashes.BLAKE2s(KEY_SIZE), KEY_SIZE * outputs, chaining_key, b"").derive(material)
    return [okm[i * KEY_SIZE:(i + 1) * KEY_SIZE] for i in range(outputs)]


def nonce(counter: int) -> bytes:
    """ChaChaPoly's 96-bit nonce in Noise: 32 zero bits, then the counter little-endian."""
    return b"\0\0\0\0" + counter.to_bytes(8, "little")


def public_bytes(key: X25519PrivateKey | X25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, X25519PrivateKey) else key
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def dh(private: X25519PrivateKey, public: bytes) -> bytes:
    try:
        return private.exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError:  # a low-order point gives an all-zero secret, which pyca refuses
        raise HandshakeFailed("bad public key") from None


class Handshake:
    """One side's SymmetricState for IKpsk2 with `prologue`, after the pre-message (the
    responder's static key)."""

    def __init__(self, prologue: bytes, responder_static: bytes, psk: bytes) -> None:
        self.h = PROTOCOL_NAME if len(PROTOCOL_NAME) == KEY_SIZE else blake2s(PROTOCOL_NAME)
        self.ck = self.h
        self.k: bytes | None = None
        self.n = 0
        self.psk = psk
        self.mix_hash(prologue)
        self.mix_hash(responder_static)
        self.remote_static = b""
        self.remote_ephemeral = b""

    def mix_hash(self, data: bytes) -> None:
        self.h = blake2s(self.h, data)

    def mix_key(self, material: bytes) -> None:
        self.ck, self.k = hkdf(self.ck, material, 2)
        self.n = 0

    def mix_key_and_hash(self, material: bytes) -> None:
        self.ck, temp_h, self.k = hkdf(self.ck, material, 3)
        self.mix_hash(temp_h)
        self.n = 0

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        assert self.k is not None  # every message here encrypts after a MixKey
        sealed = ChaCha20Poly1305(self.k).encrypt(nonce(self.n), plaintext, self.h)
        self.n += 1
        self.mix_hash(sealed)
        return sealed

    def decrypt_and_hash(self, sealed: bytes) -> bytes:
        assert self.k is not None
        try:
            plaintext = ChaCha20Poly1305(self.k).decrypt(nonce(self.n), sealed, self.h)
        except InvalidTag:
            raise HandshakeFailed("message does not authenticate") from None
        self.n += 1
        self.mix_hash(sealed)
        return plaintext

    def _ephemeral(self, public: bytes) -> None:
        self.mix_hash(public)
        self.mix_key(public)  # the psk modifier: every `e` is also mixed into the key

    def write_initiation(self, static: X25519PrivateKey, ephemeral: X25519PrivateKey,
                         responder_static: bytes, payload: bytes) -> bytes:
        """-> e, es, s, ss, payload."""
        e_pub = public_bytes(ephemeral)
        self._ephemeral(e_pub)
        self.mix_key(dh(ephemeral, responder_static))
        sealed_static = self.encrypt_and_hash(public_bytes(static))
        self.mix_key(dh(static, responder_static))
        return e_pub + sealed_static + self.encrypt_and_hash(payload)

    def read_initiation(self, static: X25519PrivateKey, message: bytes) -> bytes:
        """The responder's side of message 1; the payload. Sets remote_static/ephemeral."""
        e_pub, sealed_static = message[:KEY_SIZE], message[KEY_SIZE:2 * KEY_SIZE + TAG_SIZE]
        self.remote_ephemeral = e_pub
        self._ephemeral(e_pub)
        self.mix_key(dh(static, e_pub))
        self.remote_static = self.decrypt_and_hash(sealed_static)
        self.mix_key(dh(static, self.remote_static))
        return self.decrypt_and_hash(message[2 * KEY_SIZE + TAG_SIZE:])

    def write_response(self, ephemeral: X25519PrivateKey, payload: bytes) -> bytes:
        """<- e, ee, se, psk, payload (the responder, after read_initiation)."""
        e_pub = public_bytes(ephemeral)
        self._ephemeral(e_pub)
        self.mix_key(dh(ephemeral, self.remote_ephemeral))
        self.mix_key(dh(ephemeral, self.remote_static))
        self.mix_key_and_hash(self.psk)
        return e_pub + self.encrypt_and_hash(payload)

    def read_response(self, static: X25519PrivateKey, ephemeral: X25519PrivateKey,
                      message: bytes) -> bytes:
        """The initiator's side of message 2; the payload."""
        e_pub = message[:KEY_SIZE]
        self._ephemeral(e_pub)
        self.mix_key(dh(ephemeral, e_pub))
        self.mix_key(dh(static, e_pub))
        self.mix_key_and_hash(self.psk)
        return self.decrypt_and_hash(message[KEY_SIZE:])

    def split(self) -> tuple[bytes, bytes]:
        """The transport keys: (initiator to responder, responder to initiator)."""
        first, second = hkdf(self.ck, b"", 2)
        return first, second
