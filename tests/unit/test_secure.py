"""The encrypt layer's state machine (wire/secure.py): two channels against each other in
memory, the clock and randomness injected; handshakes, rekeying, restarts, replay, tampering."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Iterable, Sequence

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from linkbridge.errors import ConfigError
from linkbridge.wire import drops
from linkbridge.wire.ciphers import Costs, cost_byte
from linkbridge.wire.handshake import CIPHER_SIZE, TIMESTAMP_SIZE, Initiation
from linkbridge.wire.noise import public_bytes
from linkbridge.wire.replay import WINDOW, ReplayWindow
from linkbridge.wire.secure import (
    AES_256_GCM,
    CHACHA20_POLY1305,
    CIPHERS,
    INITIATION_SIZE,
    LEGACY_INITIATION_SIZE,
    OVERHEAD,
    QUEUE_LIMIT,
    RESPONSE_SIZE,
    SecureChannel,
    StaticKeys,
    Timers,
    decode_key,
    encode_key,
)

TIMERS = Timers(rekey_after=120.0, retry=5.0, rekey_packets=1000)


class Side:
    """One channel with its own counted drops, seeded randomness and wall clock."""

    def __init__(self, private: X25519PrivateKey, peer: X25519PrivateKey, seed: int,
                 psk: bytes = bytes(32), timers: Timers = TIMERS,
                 ciphers: frozenset[str] = frozenset({CHACHA20_POLY1305}),
                 costs: Costs | None = None) -> None:
        self.drops: Counter[str] = Counter()
        self.rng = random.Random(seed)
        self.wall = 1_700_000_000 * 10**9
        self.channel = SecureChannel(StaticKeys(private, public_bytes(peer), psk, ciphers),
                                     timers, self.drop, self.random, lambda: self.wall,
                                     costs=costs)

    def drop(self, reason: str) -> None:
        self.drops[reason] += 1

    # the channel's calls, each followed by the handshake work it asked for (in one thread)

    def open(self, frame: bytes, now: float) -> tuple[bytes | None, list[bytes]]:
        packet, answer = self.channel.open(frame, now)
        return packet, [*answer, *self.channel.work(now)]

    def open_many(self, frames: Sequence[bytes], now: float) -> tuple[list[bytes], list[bytes]]:
        packets, answer = self.channel.open_many(frames, now)
        return packets, answer + self.channel.work(now)

    def seal(self, packet: bytes, now: float) -> list[bytes]:
        return self.channel.seal(packet, now) + self.channel.work(now)

    def seal_many(self, packets: Sequence[bytes], now: float) -> list[bytes]:
        return self.channel.seal_many(packets, now) + self.channel.work(now)

    def tick(self, now: float) -> list[bytes]:
        return self.channel.tick(now) + self.channel.work(now)

    def start(self, now: float) -> list[bytes]:
        self.channel.start(now)
        return self.channel.work(now)

    def random(self, size: int) -> bytes:
        return self.rng.randbytes(size)


class Pair:
    """Two sides and the frames in flight between them (delivered by run())."""

    def __init__(self, seed: int = 1, psk_b: bytes = bytes(32), timers: Timers = TIMERS,
                 ciphers: tuple[frozenset[str], frozenset[str]] = (
                     frozenset({CHACHA20_POLY1305}), frozenset({CHACHA20_POLY1305})),
                 costs: tuple[Costs | None, Costs | None] = (None, None)) -> None:
        rng = random.Random(seed)
        self.keys = [X25519PrivateKey.from_private_bytes(rng.randbytes(32)) for _ in range(2)]
        self.a = Side(self.keys[0], self.keys[1], seed * 2, timers=timers, ciphers=ciphers[0],
                      costs=costs[0])
        self.b = Side(self.keys[1], self.keys[0], seed * 2 + 1, psk_b, timers, ciphers[1],
                      costs[1])
        self.now = 0.0
        self.wire: list[tuple[Side, bytes]] = []  # (receiver, frame)
        self.delivered: dict[int, list[bytes]] = {id(self.a): [], id(self.b): []}
        self.recorded: list[tuple[Side, bytes]] = []

    def restart_b(self, seed: int) -> None:
        """B starts again with the same keys; its wall clock goes on."""
        wall = self.b.wall
        self.b = Side(self.keys[1], self.keys[0], seed)
        self.b.wall = wall
        self.delivered[id(self.b)] = []

    def peer(self, side: Side) -> Side:
        return self.b if side is self.a else self.a

    def put(self, sender: Side, frames: Iterable[bytes]) -> None:
        for frame in frames:
            self.wire.append((self.peer(sender), frame))
            self.recorded.append((self.peer(sender), frame))

    def send(self, sender: Side, packet: bytes) -> None:
        self.put(sender, sender.seal(packet, self.now))

    def run(self, lose: float = 0.0, rng: random.Random | None = None) -> None:
        """Deliver frames (and the answers they cause) until the wire is empty."""
        while self.wire:
            receiver, frame = self.wire.pop(0)
            if lose and rng is not None and rng.random() < lose:
                continue
            self.deliver(receiver, frame)

    def deliver(self, receiver: Side, frame: bytes) -> bytes | None:
        packet, answer = receiver.open(frame, self.now)
        self.put(receiver, answer)
        if packet is not None:
            self.delivered[id(receiver)].append(packet)
        return packet

    def tick(self, seconds: float) -> None:
        self.now += seconds
        for side in (self.a, self.b):
            side.wall += int(seconds * 1e9)
            self.put(side, side.tick(self.now))

    def start(self) -> None:
        self.put(self.a, self.a.start(self.now))
        self.put(self.b, self.b.start(self.now))
        self.run()


def nothing(result: tuple[bytes | None, Sequence[bytes]]) -> bool:
    """Whether open() gave neither a packet nor an answer."""
    return result[0] is None and not result[1]


def packet(n: int, size: int = 60) -> bytes:
    return bytes([0x45]) + n.to_bytes(4, "big") + bytes(size - 5)


def test_both_sides_start_and_carry_packets_both_ways() -> None:
    pair = Pair()
    pair.start()
    for side in (pair.a, pair.b):
        assert side.channel.status(pair.now)["state"] == "established"
    pair.send(pair.a, packet(1))
    pair.send(pair.b, packet(2))
    pair.run()
    assert pair.delivered[id(pair.b)] == [packet(1)]
    assert pair.delivered[id(pair.a)] == [packet(2)]
    assert not pair.a.drops and not pair.b.drops


def test_overhead_and_handshake_sizes() -> None:
    pair = Pair()
    initiation = pair.a.start(0.0)[0]
    assert len(initiation) == INITIATION_SIZE == 124
    response = pair.b.open(initiation, 0.0)[1][0]
    assert len(response) == RESPONSE_SIZE == 67
    keepalive = pair.a.open(response, 0.0)[1][0]
    assert len(keepalive) == OVERHEAD == 20
    for size in (0, 1, 40, 1400):
        frames = pair.a.seal(bytes(size), 0.0)
        assert [len(frame) for frame in frames] == [size + OVERHEAD]
        assert frames[0][0] >> 4 == 0xB


def test_packets_sent_before_the_handshake_wait_in_a_bounded_queue() -> None:
    pair = Pair()
    for n in range(QUEUE_LIMIT + 3):
        pair.send(pair.a, packet(n))
    assert sum(len(frame) == INITIATION_SIZE for _, frame in pair.wire) == 1
    pair.run()
    assert pair.delivered[id(pair.b)] == [packet(n) for n in range(3, QUEUE_LIMIT + 3)]
    assert pair.a.drops == {drops.NO_SESSION: 3}


def test_rekey_by_time_loses_nothing_and_uses_fresh_keys() -> None:
    pair = Pair()
    pair.start()
    sent = 0
    first_keys = pair.a.channel.current
    for _ in range(400):  # 400 s of traffic both ways, a packet each way per second
        pair.send(pair.a, packet(sent))
        pair.send(pair.b, packet(sent))
        sent += 1
        pair.run()
        pair.tick(1.0)
    assert pair.delivered[id(pair.b)] == [packet(n) for n in range(sent)]
    assert pair.delivered[id(pair.a)] == [packet(n) for n in range(sent)]
    assert pair.a.channel.handshakes >= 4
    assert pair.a.channel.current is not first_keys
    assert not pair.a.drops and not pair.b.drops


def test_rekey_by_packet_count_with_frames_in_flight() -> None:
    pair = Pair()
    pair.start()
    in_flight: list[tuple[Side, bytes]] = []
    for n in range(3 * TIMERS.rekey_packets):
        pair.send(pair.a, packet(n))
        if n % 50 == 49:  # frames sent under the old keys arrive after the new handshake
            in_flight, pair.wire = pair.wire, in_flight
            pair.run()
            pair.wire = in_flight
            pair.run()
            in_flight = []
    pair.run()
    assert sorted(pair.delivered[id(pair.b)]) == sorted(
        packet(n) for n in range(3 * TIMERS.rekey_packets))
    assert pair.a.channel.handshakes >= 3
    assert not pair.b.drops


def test_a_restarted_side_renews_the_session_by_itself() -> None:
    pair = Pair()
    pair.start()
    pair.send(pair.a, packet(1))
    pair.run()
    # B restarts: a new channel with the same keys knows nothing of the session
    pair.tick(3.0)
    pair.restart_b(seed=99)
    pair.put(pair.b, pair.b.start(pair.now))
    pair.send(pair.a, packet(2))  # in flight under the old keys: lost, counted
    pair.run()
    pair.send(pair.a, packet(3))
    pair.send(pair.b, packet(4))
    pair.run()
    assert pair.delivered[id(pair.b)] == [packet(3)]
    assert pair.delivered[id(pair.a)][-1] == packet(4)


def test_a_restarted_side_that_only_receives_asks_for_a_session() -> None:
    pair = Pair()
    pair.start()
    pair.tick(1.0)
    pair.restart_b(seed=7)  # restarted, its first initiation lost
    pair.send(pair.a, packet(1))
    pair.run()
    assert pair.b.drops == {drops.UNKNOWN_KEY: 1}
    pair.send(pair.a, packet(2))
    pair.run()
    assert pair.delivered[id(pair.b)] == [packet(2)]


def test_every_recorded_frame_replayed_later_is_refused() -> None:
    pair = Pair()
    pair.start()
    for n in range(30):
        pair.send(pair.a, packet(n))
        pair.send(pair.b, packet(n))
    pair.run()
    before = {id(side): list(pair.delivered[id(side)]) for side in (pair.a, pair.b)}
    handshakes = pair.a.channel.handshakes, pair.b.channel.handshakes
    for receiver, frame in list(pair.recorded):  # during the session
        pair.deliver(receiver, frame)
    assert not pair.wire  # nothing answered
    assert pair.delivered == before
    assert (pair.a.channel.handshakes, pair.b.channel.handshakes) == handshakes
    to_b = sum(receiver is pair.b for receiver, _ in pair.recorded)
    assert sum(pair.b.drops.values()) == to_b
    # the handshake messages are exact copies of recent ones: refused before any work
    assert pair.b.drops[drops.REPLAY] >= 30 and pair.b.drops[drops.HANDSHAKE_DUPLICATE] >= 1
    for _ in range(200):  # after rekeys, and after the old sessions expired
        pair.send(pair.a, packet(0))
        pair.run()
        pair.tick(1.0)
    delivered = len(pair.delivered[id(pair.b)])
    for receiver, frame in list(pair.recorded[:200]):
        pair.deliver(receiver, frame)
    pair.wire.clear()
    assert len(pair.delivered[id(pair.b)]) == delivered


def test_every_single_bit_flip_of_every_frame_is_dropped() -> None:
    pair = Pair()
    initiation = pair.a.start(0.0)[0]
    response = pair.b.open(initiation, 0.0)[1][0]
    keepalive = pair.a.open(response, 0.0)[1][0]
    assert nothing(pair.b.open(keepalive, 0.0))  # B's session confirmed
    data = pair.a.seal(packet(1), 0.0)[0]
    for frame in (data, keepalive):
        for bit in range(len(frame) * 8):
            flipped = bytearray(frame)
            flipped[bit // 8] ^= 1 << bit % 8
            assert nothing(pair.b.open(bytes(flipped), 0.0))
    assert pair.b.open(data, 0.0)[0] == packet(1)  # the original still opens
    assert sum(pair.b.drops.values()) == 8 * (len(data) + len(keepalive))  # each counted
    for bit in range(len(initiation) * 8):
        responder = Pair().b  # a fresh responder each time: no rate limit, no replay state
        flipped = bytearray(initiation)
        flipped[bit // 8] ^= 1 << bit % 8
        assert nothing(responder.open(bytes(flipped), 0.0))
    for bit in range(len(response) * 8):
        flipped = bytearray(response)
        flipped[bit // 8] ^= 1 << bit % 8
        initiator = Pair().a
        initiator.start(0.0)
        assert initiator.open(bytes(flipped), 0.0)[0] is None
        assert initiator.channel.current is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzzed_frames_never_open(frame: bytes) -> None:
    pair = Pair()
    pair.start()
    assert pair.b.open(frame, 0.0)[0] is None
    assert sum(pair.b.drops.values()) == 1


def test_100000_fuzzed_frames_open_none_and_are_all_counted() -> None:
    pair = Pair()
    pair.start()
    current = pair.b.channel.current
    assert current is not None
    rng = random.Random(17)
    count = 100_000
    for n in range(count):
        if n % 2:  # aimed at the live session: right first byte, fuzzed counter and body
            frame = current.first_byte + rng.randbytes(rng.randrange(3, 120))
        else:
            frame = rng.randbytes(rng.randrange(0, 160))
        assert pair.b.open(frame, 0.0)[0] is None
    assert sum(pair.b.drops.values()) == count
    pair.send(pair.a, packet(1))  # the session still works
    pair.run()
    assert pair.delivered[id(pair.b)] == [packet(1)]


def test_batches_give_what_single_calls_give() -> None:
    one, many = Pair(seed=3), Pair(seed=3)  # the same keys and randomness: the same frames
    one.start()
    many.start()
    packets = [packet(n, 40 + n % 1000) for n in range(2500)]  # past rekey_packets twice
    frames = [frame for p in packets for frame in one.a.channel.seal(p, 0.0)]
    assert many.a.channel.seal_many(packets, 0.0) == frames
    renewal = one.a.channel.work(0.0)  # the Diffie-Hellman work comes after the data path's
    assert many.a.channel.work(0.0) == renewal
    assert [frame[0] >> 4 for frame in renewal] == [0x8]  # one initiation to renew
    frames += renewal
    mixed = [*frames[:50], random.Random(2).randbytes(30), *frames[10:20], *frames[50:]]
    singles = [one.b.open(frame, 0.0) for frame in mixed]
    opened, answers = many.b.open_many(mixed, 0.0)
    assert opened == [p for p, _ in singles if p] == packets
    assert answers == [answer for _, sent in singles for answer in sent]
    assert len(answers) == 1 and one.b.drops == many.b.drops
    assert many.b.drops[drops.REPLAY] == 10 and sum(many.b.drops.values()) == 11


def test_plain_ip_is_dropped_while_encryption_is_on() -> None:
    pair = Pair()
    pair.start()
    assert nothing(pair.b.open(packet(1), 0.0))
    assert pair.b.drops == {drops.NOT_ENCRYPTED: 1}


def test_wrong_peer_key_gives_no_session_and_says_why() -> None:
    pair = Pair()
    stranger = X25519PrivateKey.from_private_bytes(bytes(range(32)))
    pair.b = Side(pair.keys[1], stranger, seed=5)  # B expects another peer
    pair.delivered[id(pair.b)] = []
    pair.start()
    for n in range(5):
        pair.send(pair.a, packet(n))
    pair.run()
    assert not pair.delivered[id(pair.b)]
    assert pair.b.drops[drops.HANDSHAKE_PEER] == 1  # A's initiation: unknown static key
    assert pair.a.drops[drops.HANDSHAKE_MAC] == 1  # B's initiation: made for another key
    assert any("not the configured peer" in event for event in pair.b.channel.events)
    assert any("--peer-public-key is wrong" in event for event in pair.a.channel.events)


def test_different_preshared_keys_fail_the_response() -> None:
    pair = Pair(psk_b=bytes([7]) * 32)
    pair.start()
    assert pair.a.channel.current is None and pair.b.channel.current is None
    # the initiator whose handshake went on (crossed initiations: the higher public key's)
    initiator = max((pair.a, pair.b), key=lambda side: side.channel.keys.public)
    assert initiator.drops[drops.HANDSHAKE_AUTH] >= 1
    assert any("pre-shared" in event for event in initiator.channel.events)


def test_matching_preshared_keys_work() -> None:
    pair = Pair(psk_b=bytes(32))
    pair.start()
    assert pair.a.channel.current is not None


def test_unanswered_initiations_are_retried_with_backoff() -> None:
    pair = Pair()
    pair.a.start(0.0)
    times = []
    for second in range(1, 200):
        if pair.a.tick(float(second)):
            times.append(second)
    gaps = [b - a for a, b in itertools.pairwise([0, *times])]
    assert gaps[:3] == [5, 5, 5] and gaps[3:6] == [10, 20, 40] and set(gaps[6:]) == {40}
    assert any("no handshake response after 3 attempts" in e for e in pair.a.channel.events)


def test_retries_complete_the_handshake_over_a_lossy_link() -> None:
    rng = random.Random(3)
    for trial in range(20):
        pair = Pair(seed=trial + 10)
        pair.start()  # even if every frame of the start is lost ...
        for _ in range(120):
            if pair.a.channel.current and pair.b.channel.current:
                break
            pair.send(pair.a, packet(0))
            pair.run(lose=0.2, rng=rng)
            pair.tick(1.0)
        assert pair.a.channel.current is not None, trial


def test_a_handshake_flood_is_rate_limited() -> None:
    pair = Pair()
    pair.start()
    for n in range(100):  # valid, fresh initiations, all at once
        initiator = Side(pair.keys[0], pair.keys[1], seed=50 + n)
        initiator.wall = pair.a.wall + n + 1
        pair.b.open(initiator.start(pair.now)[0], pair.now)
    assert pair.b.drops[drops.HANDSHAKE_RATE] >= 94
    pair.send(pair.a, packet(1))  # the data path still works
    pair.run()
    assert pair.delivered[id(pair.b)] == [packet(1)]


def test_sessions_expire_without_traffic_and_come_back_on_demand() -> None:
    pair = Pair()
    pair.start()
    pair.tick(TIMERS.reject_after + 1)
    assert pair.a.channel.status(pair.now)["state"] == "no session"
    pair.send(pair.a, packet(5))
    pair.run()
    assert pair.delivered[id(pair.b)] == [packet(5)]


def test_no_side_seals_on_an_expired_session_whatever_the_retry() -> None:
    """With a retry above half the rekey interval the responder's renewal point once lay past
    the session's end, and its fast path sealed on an expired session until then."""
    timers = Timers(rekey_after=10.0, retry=8.0, rekey_packets=1000)
    pair = Pair(timers=timers)
    pair.start()
    for side in (pair.a, pair.b):
        current = side.channel.current
        assert current is not None and current.renew_at <= current.expires
        assert side.channel.seal_current(packet(1), current.expires) is None


def test_replay_window_accepts_each_counter_once_within_the_window() -> None:
    window = ReplayWindow()
    order = list(range(3000))
    random.Random(4).shuffle(order)
    accepted = {n for n in order if window.accept(n)}
    assert all(window.highest - n >= WINDOW for n in set(order) - accepted)
    assert not any(window.accept(n) for n in order)
    assert window.accept(10**6) and not window.accept(10**6 - WINDOW)
    assert window.accept(10**6 - WINDOW + 1)


def test_keys_and_timers_are_checked() -> None:
    assert decode_key(encode_key(bytes(range(32))), "k") == bytes(range(32))
    for bad in ("not base64!", encode_key(bytes(31))):
        with pytest.raises(ConfigError):
            decode_key(bad, "k")
    own = X25519PrivateKey.generate()
    with pytest.raises(ConfigError, match="own public key"):
        StaticKeys(own, public_bytes(own))
    with pytest.raises(ConfigError):
        Timers(rekey_after=5.0, retry=5.0)
    with pytest.raises(ConfigError):
        Timers(rekey_packets=1 << 24)


def test_replay_window_marks_a_run_as_it_marks_each_counter() -> None:
    rng = random.Random(9)
    one, run = ReplayWindow(), ReplayWindow()
    for _ in range(500):
        low = one.highest + 1 + rng.choice([0, 0, 1, 5, WINDOW - 3, WINDOW, 3 * WINDOW])
        high = low + rng.choice([0, 1, 7, 63, WINDOW - 1, WINDOW + 5])
        for counter in range(low, high + 1):
            one.mark(counter)
        run.mark_run(low, high)
        assert (run.highest, run._seen) == (one.highest, one._seen)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 119), max_size=160), st.lists(st.integers(1, 40), min_size=1),
       st.sets(st.integers(0, 159), max_size=10))
def test_batched_opening_accepts_exactly_the_fresh_authentic_frames(
        order: list[int], cuts: list[int], corrupt: set[int]) -> None:
    """Any order, duplicates and forgeries, opened in batches of any size: each authentic
    counter is accepted once (all 120 fit the window), every other frame is a counted drop,
    exactly as one open() per frame does."""
    pair = Pair(seed=5)
    pair.start()
    sealed = pair.a.seal_many([packet(n) for n in range(120)], 0.0)
    frames = [sealed[n] for n in order]
    for at in corrupt & set(range(len(frames))):
        frames[at] = frames[at][:-1] + bytes([frames[at][-1] ^ 1])
    singles = Pair(seed=5)
    singles.start()
    one_by_one = [singles.b.open(frame, 0.0)[0] for frame in frames]
    opened: list[bytes] = []
    at, sizes = 0, itertools.cycle(cuts)
    while at < len(frames):
        size = next(sizes)
        opened += pair.b.open_many(frames[at:at + size], 0.0)[0]
        at += size
    expected, seen = [], set()
    for index, n in enumerate(order):
        if index not in corrupt and n not in seen:
            seen.add(n)
            expected.append(packet(n))
    assert opened == [p for p in one_by_one if p] == expected
    assert pair.b.drops == singles.b.drops
    assert sum(pair.b.drops.values()) == len(frames) - len(expected)


BOTH = frozenset(CIPHERS)


@pytest.mark.parametrize(("a", "b", "chosen"), [
    (BOTH, BOTH, AES_256_GCM),
    (BOTH, frozenset({CHACHA20_POLY1305}), CHACHA20_POLY1305),
    (frozenset({CHACHA20_POLY1305}), BOTH, CHACHA20_POLY1305),
    (frozenset({AES_256_GCM}), BOTH, AES_256_GCM),
    (frozenset({AES_256_GCM}), frozenset({AES_256_GCM}), AES_256_GCM),
])
def test_the_sides_agree_on_the_best_cipher_both_allow(
        a: frozenset[str], b: frozenset[str], chosen: str) -> None:
    pair = Pair(ciphers=(a, b))
    pair.start()
    for n in range(3):
        pair.send(pair.a, packet(n))
        pair.send(pair.b, packet(10 + n))
    pair.run()
    assert pair.delivered[id(pair.b)] == [packet(n) for n in range(3)]
    assert pair.delivered[id(pair.a)] == [packet(10 + n) for n in range(3)]
    for side in (pair.a, pair.b):
        assert side.channel.status(pair.now)["cipher"] == chosen
        assert not side.drops


def costs(aes_us: float, chacha_us: float) -> Costs:
    return {AES_256_GCM: cost_byte(aes_us * 1000), CHACHA20_POLY1305: cost_byte(chacha_us * 1000)}


@pytest.mark.parametrize(("a", "b", "chosen"), [
    (costs(1.0, 2.0), costs(1.0, 2.0), AES_256_GCM),  # AES instructions on both
    (costs(9.0, 2.0), costs(9.0, 2.0), CHACHA20_POLY1305),  # on neither
    (costs(1.0, 2.0), costs(9.0, 3.0), CHACHA20_POLY1305),  # 10 us against 5 us in all
    (costs(1.0, 3.0), costs(3.5, 2.0), AES_256_GCM),  # 4.5 us against 5 us
    (costs(2.0, 2.0), costs(3.0, 3.0), AES_256_GCM),  # equal sums: the order of CIPHERS
])
def test_the_handshake_takes_the_cipher_of_the_lowest_sum_of_both_sides_costs(
        a: Costs, b: Costs, chosen: str) -> None:
    """Both sides offer both ciphers with their measured costs; whichever side answers (the
    sides start at once, and each renews later), the session is on the cipher whose costs
    summed over both sides are the lowest."""
    for first in (0, 1):
        pair = Pair(ciphers=(BOTH, BOTH), costs=(a, b) if first == 0 else (b, a))
        pair.start()
        pair.send(pair.a, packet(1))
        pair.run()
        assert pair.delivered[id(pair.b)] == [packet(1)]
        for side in (pair.a, pair.b):
            assert side.channel.status(pair.now)["cipher"] == chosen
            assert not side.drops


def test_an_initiation_without_costs_is_answered_with_the_fixed_order() -> None:
    """An initiation of linkbridge before the measured costs (LEGACY_INITIATION_SIZE, its
    payload the timestamp and the offer only) still makes a session: the first cipher in
    the order of CIPHERS that both allow."""
    pair = Pair(ciphers=(BOTH, BOTH), costs=(costs(9.0, 1.0), costs(9.0, 1.0)))
    a = pair.a.channel
    a.start(pair.now)
    job = a.take_job(pair.now)
    assert isinstance(job, Initiation)
    job.payload = job.payload[:TIMESTAMP_SIZE + CIPHER_SIZE]
    job.run()
    (initiation,) = a.finish(job, pair.now)
    assert len(initiation) == LEGACY_INITIATION_SIZE == 122
    pair.put(pair.a, [initiation])
    pair.run()
    pair.send(pair.a, packet(1))
    pair.run()
    assert pair.delivered[id(pair.b)] == [packet(1)]
    assert a.status(pair.now)["cipher"] == AES_256_GCM  # not the cheaper one: no costs


def test_sides_without_a_common_cipher_make_no_session_and_say_why() -> None:
    pair = Pair(ciphers=(frozenset({AES_256_GCM}), frozenset({CHACHA20_POLY1305})))
    pair.start()
    pair.send(pair.a, packet(1))
    pair.run()
    assert not pair.delivered[id(pair.b)] and not pair.delivered[id(pair.a)]
    assert pair.b.drops[drops.HANDSHAKE_CIPHER] >= 1
    assert pair.a.channel.status(pair.now)["state"] != "established"
    assert any("aes-256-gcm" in event and "--cipher" in event for event in pair.b.channel.events)


def test_unknown_or_no_ciphers_are_refused() -> None:
    key = X25519PrivateKey.generate()
    peer = public_bytes(X25519PrivateKey.generate())
    for bad in (frozenset(), frozenset({"rot13"})):
        with pytest.raises(ConfigError, match="ciphers"):
            StaticKeys(key, peer, ciphers=bad)


def test_crossed_initiations_end_in_one_session_and_renewals_lose_nothing() -> None:
    """Both sides start at once and later both renew at once (each reaches rekey_packets with
    frames of the other still in flight): each time the initiations cross, the lower public
    key's gives way (its answer is absorbed, not a drop), the two sides send on the same
    session, and no frame is refused."""
    pair = Pair(seed=8)
    pair.start()
    a, b = pair.a.channel, pair.b.channel
    assert a.current is not None and b.current is not None
    assert a.current.first_byte[0] & 0x0F == (b.current.header_bits >> 24) & 0x0F
    sent = 0
    for _ in range(3):
        for _ in range(TIMERS.rekey_packets + 10):  # both cross the count before any delivery
            pair.send(pair.a, packet(sent))
            pair.send(pair.b, packet(sent))
            sent += 1
        pair.run()
        assert a.current is not None and b.current is not None
        assert a.current.first_byte[0] & 0x0F == (b.current.header_bits >> 24) & 0x0F
        pair.tick(2.0)  # the handshake rate limit refills
    assert pair.delivered[id(pair.a)] == pair.delivered[id(pair.b)] == [
        packet(n) for n in range(sent)]
    assert not pair.a.drops and not pair.b.drops


def test_a_packet_or_tick_while_our_initiation_is_written_asks_for_no_second_one() -> None:
    """The glue writes an initiation outside its lock (take_job, run, finish): a packet sealed
    or a retry due meanwhile must not start another, whose key id and handshake would replace
    the first after it was sent (its answer then failed as handshake_auth)."""
    pair = Pair(seed=5)
    a = pair.a.channel
    a.start(0.0)
    job = a.take_job(0.0)
    assert job is not None and not a.work_waiting
    assert a.seal(packet(1), 0.0) == [] and not a.work_waiting
    assert a.status(0.0)["state"] == "handshaking"
    job.run()
    first = a.finish(job, 0.0)
    assert len(first) == 1 and a.take_job(0.0) is None
    job = a.take_job(0.0)
    assert job is None
    a.tick(5.0)  # the retry is due ...
    job = a.take_job(5.0)
    assert job is not None
    a.tick(20.0)  # ... and stays due while it is written: still one
    assert a.take_job(20.0) is None
    job.run()
    assert len(a.finish(job, 20.0)) == 1 and not a.work_waiting
    pair.put(pair.a, first)
    pair.run()  # B answers the first (replaced) initiation: no session from it, no auth error
    assert a.current is None
    assert pair.a.drops == Counter({drops.HANDSHAKE_UNEXPECTED: 1}), pair.a.drops
    assert not any("pre-shared" in event for event in a.events)


def test_a_late_answer_to_a_retried_initiation_is_unexpected_not_a_failed_response() -> None:
    """A retry takes a new key id: the answer to the initiation it replaced, arriving late,
    is counted handshake_unexpected, and the answer to the retry makes the session."""
    pair = Pair(seed=6)
    pair.put(pair.a, pair.a.start(0.0))
    first = pair.wire.pop()
    _, late_answer = pair.b.open(first[1], 0.0)
    pair.tick(5.0)  # A retries before B's answer arrives, and the answer comes first
    pair.wire.insert(0, (pair.a, late_answer[0]))
    pair.run()
    assert pair.a.channel.current is not None and pair.b.channel.current is not None
    assert pair.a.drops == Counter({drops.HANDSHAKE_UNEXPECTED: 1}), pair.a.drops
    pair.send(pair.a, packet(7))
    pair.run()
    assert pair.delivered[id(pair.b)] == [packet(7)]


def test_a_responder_counts_its_handshake_when_the_initiator_confirms_it() -> None:
    """An answered initiation may be a replay: the responder's session (and its count and log
    line) begins with the initiator's first frame on it, never with the answer."""
    pair = Pair(seed=7)
    pair.put(pair.a, pair.a.start(0.0))
    _, initiation = pair.wire.pop()
    _, answer = pair.b.open(initiation, 0.0)
    b = pair.b.channel
    assert len(answer) == 1 and b.handshakes == 0 and b.status(0.0)["state"] == "no session"
    _, confirm = pair.a.open(answer[0], 0.0)
    assert pair.a.channel.handshakes == 1 and len(confirm) == 1  # a keepalive confirms it
    assert pair.b.open(confirm[0], 0.0) == (None, [])
    assert b.handshakes == 1 and b.status(0.0)["state"] == "established"
    assert b.last_handshake == pair.b.wall


def test_the_one_frame_fast_paths_decide_as_seal_and_open() -> None:
    """seal_current() and open_current(), the lean loop's per-packet calls: a frame on the
    current session opens once (a replay and a forgery are counted drops, and a forgery
    marks no counter), a keepalive gives nothing, and what is not the current session's
    data is left to seal() and open()."""
    pair = Pair()
    assert pair.a.channel.seal_current(packet(0), pair.now) is None  # no session: seal()'s
    pair.start()
    a, b = pair.a.channel, pair.b.channel
    first, second, keepalive = (a.seal_current(p, pair.now) for p in (packet(1), packet(2), b""))
    assert first is not None and second is not None and keepalive is not None
    assert b.open_current(first, pair.now) == packet(1)
    assert b.open_current(first, pair.now) == b""  # the same counter again
    assert b.open_current(second[:-1] + bytes([second[-1] ^ 1]), pair.now) == b""  # forged
    assert b.open_current(second, pair.now) == packet(2)
    assert b.open_current(keepalive, pair.now) == b""
    assert pair.b.drops == {drops.REPLAY: 1, drops.AUTH: 1}
    initiation = pair.a.start(pair.now)[0]
    assert b.open_current(initiation, pair.now) is None  # a handshake: open()'s
    assert b.open_current(first[:OVERHEAD - 1], pair.now) is None
    late = pair.now + TIMERS.rekey_after + TIMERS.retry
    assert a.seal_current(packet(3), late) is None  # time to renew: seal()'s
