"""The cipher choice (wire/ciphers.py): cost bytes, the rule that picks by the lower sum of both
sides' costs, and the measurement each side makes at start (datapath/ciphercost.py)."""

from __future__ import annotations

import itertools

from linkbridge.datapath.ciphercost import measured_costs, seal_open_ns
from linkbridge.wire.ciphers import (
    AES_256_GCM,
    CHACHA20_POLY1305,
    CIPHERS,
    COSTS_SIZE,
    UNMEASURED,
    choose_cipher,
    cipher_bits,
    cost_byte,
    decode_costs,
    encode_costs,
)

BOTH = cipher_bits(CIPHERS)
AES, CHACHA = cipher_bits([AES_256_GCM]), cipher_bits([CHACHA20_POLY1305])


def test_a_cost_byte_is_a_log_scale_that_keeps_order_and_never_reads_unmeasured() -> None:
    nanoseconds = [0, 1, 2, 500, 1000, 1045, 1100, 3000, 60_000, 10**9]
    codes = [cost_byte(ns) for ns in nanoseconds]
    assert codes == sorted(codes) and all(1 <= code <= 255 for code in codes)
    assert UNMEASURED not in codes
    assert cost_byte(1000) != cost_byte(1100)  # 10% apart: told apart (steps of 4.4%)
    costs = {AES_256_GCM: 150, CHACHA20_POLY1305: 170}
    field = encode_costs(costs)
    assert len(field) == COSTS_SIZE and decode_costs(field) == costs
    assert decode_costs(encode_costs({CHACHA20_POLY1305: 9})) == {CHACHA20_POLY1305: 9}
    assert decode_costs(b"") == {}  # an initiation without the field


def test_the_rule_is_the_lowest_sum_the_same_for_either_side_ties_in_cipher_order() -> None:
    cheap_aes = {AES_256_GCM: cost_byte(900), CHACHA20_POLY1305: cost_byte(1800)}
    no_aes = {AES_256_GCM: cost_byte(9000), CHACHA20_POLY1305: cost_byte(2500)}
    assert choose_cipher(BOTH, cheap_aes, cheap_aes) == AES_256_GCM
    assert choose_cipher(BOTH, cheap_aes, no_aes) == CHACHA20_POLY1305  # 9.9 us vs 4.3 us
    assert choose_cipher(AES, cheap_aes, no_aes) == AES_256_GCM  # only what both allow
    assert choose_cipher(CHACHA, cheap_aes, cheap_aes) == CHACHA20_POLY1305
    assert choose_cipher(0, cheap_aes, cheap_aes) is None
    even = {AES_256_GCM: 160, CHACHA20_POLY1305: 160}
    assert choose_cipher(BOTH, even, even) == next(iter(CIPHERS))
    assert choose_cipher(BOTH, cheap_aes, {}) == next(iter(CIPHERS))  # no costs: fixed order
    grid = [{AES_256_GCM: a, CHACHA20_POLY1305: c}
            for a, c in itertools.product(range(140, 200, 7), repeat=2)]
    for ours, theirs in itertools.product(grid, repeat=2):
        assert choose_cipher(BOTH, ours, theirs) == choose_cipher(BOTH, theirs, ours)


def test_each_cipher_is_measured_in_cpu_time() -> None:
    ticks = iter(range(0, 10**9, 3200))  # a clock that says 3200 ns a call
    assert seal_open_ns(CIPHERS[AES_256_GCM][1], lambda: next(ticks)) == 3200 / 16
    costs = measured_costs()
    assert set(costs) == set(CIPHERS)
    assert all(cost_byte(100) < cost < cost_byte(10**6) for cost in costs.values())
