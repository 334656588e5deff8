"""What each transport cipher costs on this CPU, measured when the encrypt layer opens: the
handshake offers these costs and chooses by them (wire/ciphers.py, docs/security.md, "Cipher
choice")."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from types import MappingProxyType

from linkbridge.wire.ciphers import AEAD, CIPHERS, Costs, cost_byte

MEASURED_SIZE = 1452  # bytes: a full packet of a udp: tunnel (1472 less the 20 of encryption)
MEASURED_PACKETS = 16  # sealed and opened per round ...
MEASURED_ROUNDS = 5  # ... and the fastest round counts (about 1 ms for both ciphers)
NONCE_SIZE = 12


def seal_open_ns(aead: AEAD, clock: Callable[[], int] = time.thread_time_ns) -> float:
    """Nanoseconds of this thread's CPU time to seal and open one full packet with `aead`,
    the fastest of MEASURED_ROUNDS rounds (CPU time: a thread that loses the CPU meanwhile
    is not charged for it)."""
    cipher = aead(os.urandom(32))
    nonce, packet = bytes(NONCE_SIZE), bytes(MEASURED_SIZE)
    best = float("inf")
    for _ in range(MEASURED_ROUNDS):
        start = clock()
        for _ in range(MEASURED_PACKETS):
            cipher.decrypt(nonce, cipher.encrypt(nonce, packet, None), None)
        best = min(best, (clock() - start) / MEASURED_PACKETS)
    return best


@functools.cache
def measured_costs() -> Costs:
    """The cost byte of every cipher on this CPU, measured once per process (a multipoint
    tunnel's peers, a reload's new layers all take the first measurement)."""
    return MappingProxyType({name: cost_byte(seal_open_ns(aead))
                             for name, (_bit, aead) in CIPHERS.items()})
