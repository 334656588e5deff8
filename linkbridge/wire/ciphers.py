"""The transport ciphers a handshake may choose, and the rule that chooses (docs/security.md,
"Cipher choice"). Pure: the costs are measured by the glue (datapath/ciphercost.py)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

CHACHA20_POLY1305 = "chacha20-poly1305"
AES_256_GCM = "aes-256-gcm"
AEAD = type[ChaCha20Poly1305] | type[AESGCM]
# the transport ciphers, each with its bit in a handshake's cipher byte; between equal costs
# (or with a peer that sends none) the one listed first is taken
CIPHERS: dict[str, tuple[int, AEAD]] = {
    AES_256_GCM: (0x02, AESGCM),
    CHACHA20_POLY1305: (0x01, ChaCha20Poly1305),
}
# an initiation's costs: one byte per cipher, in the order of their bits (lowest first)
COST_ORDER = sorted(CIPHERS, key=lambda name: CIPHERS[name][0])
COSTS_SIZE = len(COST_ORDER)
COST_STEPS = 16  # a cost byte is 16 x log2(nanoseconds): steps of 4.4%, 1 ns to 62 us
UNMEASURED = 0  # the cost byte of a cipher a side did not measure
Costs = Mapping[str, int]  # cost bytes by cipher


def cipher_bits(names: Iterable[str]) -> int:
    """The cipher byte that offers `names`."""
    bits = 0
    for name in names:
        bits |= CIPHERS[name][0]
    return bits


def cipher_names(bits: int) -> list[str]:
    """The ciphers a cipher byte names, in the order of CIPHERS (unknown bits are left out)."""
    return [name for name, (bit, _aead) in CIPHERS.items() if bits & bit]


def cost_byte(nanoseconds: float) -> int:
    """A measured cost (ns to seal and open a full packet) as the byte a handshake carries."""
    if nanoseconds <= 1:
        return 1
    return max(1, min(255, round(COST_STEPS * math.log2(nanoseconds))))


def encode_costs(costs: Costs) -> bytes:
    """The costs field of an initiation: a cost byte per cipher (UNMEASURED where none)."""
    return bytes(costs.get(name, UNMEASURED) for name in COST_ORDER)


def decode_costs(field: bytes) -> dict[str, int]:
    """The cost bytes an initiation gives (none from a side that sent no field)."""
    return {name: cost for name, cost in zip(COST_ORDER, field, strict=False)
            if cost != UNMEASURED}


def choose_cipher(common: int, ours: Costs, theirs: Costs) -> str | None:
    """The cipher a responder takes among `common` (the bits both sides allow): the one with
    the lowest sum of both sides' costs, each cost byte turned back into nanoseconds (so the
    rule is the same whichever side answers), the first in CIPHERS order between equal sums.
    Where a side gave no cost for one of them, the first in CIPHERS order. None: no common."""
    names = cipher_names(common)
    if not names:
        return None
    if not all(name in ours and name in theirs for name in names):
        return names[0]
    return min(names, key=lambda name: 2 ** (ours[name] / COST_STEPS)
               + 2 ** (theirs[name] / COST_STEPS))
