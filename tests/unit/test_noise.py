"""The Noise_IKpsk2 handshake of wire/noise.py against the published cacophony test vector."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from linkbridge.wire.noise import Handshake, HandshakeFailed, nonce, public_bytes

# The cacophony test vector of Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s (the cacophony suite,
# as shipped in tests/vectors/cacophony.txt of the noiseprotocol and snow projects): test data.
VECTOR = {
    "init_prologue": (
        "4a6f686e2047616c74"),
    "init_psks": (
        "54686973206973206d7920417573747269616e20706572737065637469766521"),
    "init_static": (
        "e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1"),
    "init_ephemeral": (
        "893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a"),
    "init_remote_static": (
        "31e0303fd6418d2f8c0e78b91f22e8caed0fbe48656dcf4767e4834f701b8f62"),
    "resp_static": (
        "4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893"),
    "resp_ephemeral": (
        "bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b"),
    "handshake_hash": (
        "f5191b875290abcd41347ac3622d9679688a7e980229cb937ef748336cfde0e5"),
}
MESSAGES = [
    ("4c756477696720766f6e204d69736573",
     "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c7944001e21de9f98ddd8"
     "e2ad57527207feb56253c9c94a9e496782ecfcb2a75fbcaf1b52948cc48daefe660c62119ab50009"
     "80c84831215f2441eba616548e832985464cf17e51ee93109008399a21f7e13f"),
    ("4d757272617920526f746862617264",
     "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f144808843cb765f2caef0751b"
     "8f007572dab0322217755c0632f365717edbf34d33e87a"),
    ("462e20412e20486179656b",
     "8153ca9833bc3c1b91a7e66e5f4d4f5b59bf9e64c2f20d15f0bba7"),
    ("4361726c204d656e676572",
     "07af0c9c86e1b4e80f36b04ff7688d51141af3debd0332f0a705ef"),
    ("4a65616e2d426170746973746520536179",
     "6ab1467c0448cc78394494abaaf23afce0e234315d6e2624dcbfa8a21c1c4d073d"),
    ("457567656e2042f6686d20766f6e2042617765726b",
     "dfc346c0d2296ae6cf1acf6f12b8456a1dba228cf8d8b774aacf1c47fc53aa80ebc7a4c292"),
]


def key(name: str) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(bytes.fromhex(VECTOR[name]))


def test_handshake_and_transport_match_the_vector() -> None:
    prologue, psk = bytes.fromhex(VECTOR["init_prologue"]), bytes.fromhex(VECTOR["init_psks"])
    responder_static = public_bytes(key("resp_static"))
    assert responder_static.hex() == VECTOR["init_remote_static"]
    initiator = Handshake(prologue, responder_static, psk)
    responder = Handshake(prologue, responder_static, psk)
    payloads = [bytes.fromhex(payload) for payload, _ in MESSAGES]
    expected = [bytes.fromhex(sealed) for _, sealed in MESSAGES]

    first = initiator.write_initiation(key("init_static"), key("init_ephemeral"),
                                       responder_static, payloads[0])
    assert first == expected[0]
    assert responder.read_initiation(key("resp_static"), first) == payloads[0]
    assert responder.remote_static == public_bytes(key("init_static"))
    second = responder.write_response(key("resp_ephemeral"), payloads[1])
    assert second == expected[1]
    assert initiator.read_response(key("init_static"), key("init_ephemeral"), second) == (
        payloads[1])
    assert initiator.h.hex() == responder.h.hex() == VECTOR["handshake_hash"]

    to_responder, to_initiator = initiator.split()
    assert responder.split() == (to_responder, to_initiator)
    counters = {True: 0, False: 0}
    for index in range(2, len(MESSAGES)):
        from_initiator = index % 2 == 0
        cipher = ChaCha20Poly1305(to_responder if from_initiator else to_initiator)
        sealed = cipher.encrypt(nonce(counters[from_initiator]), payloads[index], b"")
        counters[from_initiator] += 1
        assert sealed == expected[index]


def test_a_tampered_initiation_fails() -> None:
    prologue, psk = bytes.fromhex(VECTOR["init_prologue"]), bytes.fromhex(VECTOR["init_psks"])
    responder_static = public_bytes(key("resp_static"))
    first = Handshake(prologue, responder_static, psk).write_initiation(
        key("init_static"), key("init_ephemeral"), responder_static, b"payload")
    for index in range(len(first)):
        tampered = bytearray(first)
        tampered[index] ^= 0x01
        with pytest.raises(HandshakeFailed):
            Handshake(prologue, responder_static, psk).read_initiation(
                key("resp_static"), bytes(tampered))
