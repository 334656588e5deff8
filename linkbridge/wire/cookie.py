"""Cookie replies: proof that an initiator receives what is sent to the address it sends from,
WireGuard's answer to handshake floods, for links with a return path (udp:, whose peer filter
accepts one address). Pure: time and random bytes are passed in.

A responder over its initiation rate answers an initiation with a cookie reply (the EXTENSION
frame's COOKIE_REPLY subtype) instead of doing any Diffie-Hellman. The cookie is a MAC of the
return address the initiation came from (a multipoint peer's station's address now, which may
move) under a secret renewed every SECRET_LIFE seconds; it travels sealed under a key
made from the responder's public key, with the initiation's mac1 as associated data, so only
the sender of that initiation can use it. The initiator's next initiations carry mac2, a MAC
under the cookie: they count against a bucket of their own, which an attacker who never sees
the replies (someone spoofing the peer's address from elsewhere) cannot drain.

    cookie reply: 0x20 0x04, receiver key id (1), nonce (12), sealed cookie (16 + 16): 47 bytes
"""

from __future__ import annotations

import math
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.constant_time import bytes_eq

from linkbridge.wire.frames import COOKIE_REPLY, EXTENSION_HEADER, extension_header
from linkbridge.wire.noise import KEY_SIZE, TAG_SIZE, blake2s, hmac_blake2s

LABEL_COOKIE = b"cookie--"
COOKIE_SIZE = 16
MAC2_SIZE = 16
NONCE_SIZE = 12
SECRET_LIFE = 120.0  # seconds a cookie secret is used (and a cookie kept)
REPLY_SIZE = EXTENSION_HEADER + 1 + NONCE_SIZE + COOKIE_SIZE + TAG_SIZE  # 47
_SEALED = EXTENSION_HEADER + 1 + NONCE_SIZE


def mac2(cookie: bytes, message: bytes) -> bytes:
    """The MAC an initiation (with its mac1) carries under a cookie."""
    return hmac_blake2s(cookie, message)[:MAC2_SIZE]


class CookieIssuer:
    """The responder's side: cookies for return addresses, checks of mac2, replies. A cookie
    serves the one address it was given for."""

    def __init__(self, own_public: bytes, random: Callable[[int], bytes]) -> None:
        self._seal = ChaCha20Poly1305(blake2s(LABEL_COOKIE, own_public))
        self._random = random
        self._secrets: list[bytes] = []  # the current secret first, then the one before
        self._renewed = -math.inf
        self._cached: tuple[str, list[bytes]] = ("", [])  # the last address and its cookies

    def _cookies(self, address: str, now: float) -> list[bytes]:
        if now - self._renewed >= SECRET_LIFE:
            self._secrets = [self._random(KEY_SIZE), *self._secrets[:1]]
            self._renewed = now
            self._cached = ("", [])
        if self._cached[0] != address or not self._cached[1]:
            self._cached = (address, [hmac_blake2s(secret, address.encode())[:COOKIE_SIZE]
                                      for secret in self._secrets])
        return self._cached[1]

    def proven(self, message: bytes, tag: bytes, address: str, now: float) -> bool:
        """Whether `tag` is the mac2 of `message` under a cookie this side gave out lately to
        `address` (the one `message` came from)."""
        return any(bytes_eq(mac2(cookie, message), tag)
                   for cookie in self._cookies(address, now))

    def reply(self, receiver_id: int, mac1: bytes, address: str, now: float) -> bytes:
        """The cookie reply to an initiation with key id `receiver_id` and `mac1` that came
        from `address` (the reply goes there)."""
        nonce = self._random(NONCE_SIZE)
        sealed = self._seal.encrypt(nonce, self._cookies(address, now)[0], mac1)
        return extension_header(COOKIE_REPLY) + bytes((receiver_id,)) + nonce + sealed


class CookieHolder:
    """The initiator's side: the cookie its peer last gave it, while it is fresh."""

    def __init__(self, peer_public: bytes) -> None:
        self._open = ChaCha20Poly1305(blake2s(LABEL_COOKIE, peer_public))
        self._cookie = b""
        self._received = -math.inf

    @staticmethod
    def receiver_id(reply: bytes) -> int | None:
        """The key id a cookie reply is for; None when it has the wrong size."""
        return reply[EXTENSION_HEADER] & 0x0F if len(reply) == REPLY_SIZE else None

    def accept(self, reply: bytes, mac1: bytes, now: float) -> bool:
        """Keep the cookie of a reply to the initiation that carried `mac1`; False when it
        does not authenticate."""
        try:
            self._cookie = self._open.decrypt(reply[EXTENSION_HEADER + 1:_SEALED],
                                              reply[_SEALED:], mac1)
        except InvalidTag:
            return False
        self._received = now
        return True

    def mac2(self, message: bytes, now: float) -> bytes:
        """mac2 for `message` (with its mac1), or nothing without a fresh cookie."""
        if now - self._received >= SECRET_LIFE:
            return b""
        return mac2(self._cookie, message)
