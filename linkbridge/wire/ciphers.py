"""The transport ciphers a handshake may choose (docs/security.md, "Cipher choice"). Pure."""

from __future__ import annotations

from collections.abc import Iterable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

CHACHA20_POLY1305 = "chacha20-poly1305"
AES_256_GCM = "aes-256-gcm"
AEAD = type[ChaCha20Poly1305] | type[AESGCM]
# the transport ciphers, each with its bit in a handshake's cipher byte, best first: a
# responder takes the first one both sides allow (AES-GCM only pays where the CPU has AES
# instructions, so a side offers it only there, unless --cipher says otherwise)
CIPHERS: dict[str, tuple[int, AEAD]] = {
    AES_256_GCM: (0x02, AESGCM),
    CHACHA20_POLY1305: (0x01, ChaCha20Poly1305),
}


def cipher_bits(names: Iterable[str]) -> int:
    """The cipher byte that offers `names`."""
    bits = 0
    for name in names:
        bits |= CIPHERS[name][0]
    return bits


def cipher_names(bits: int) -> list[str]:
    """The ciphers a cipher byte names, best first (unknown bits are left out)."""
    return [name for name, (bit, _aead) in CIPHERS.items() if bits & bit]
