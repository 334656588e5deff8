"""The encrypt layer under attack, sans-IO (wire/secure.py, guard.py, cookie.py, keys.py):
replayed and forged handshake floods, cookie replies, restarts with a replayed initiation,
and keys refused before use (docs/security.md, "Claims and their tests")."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from linkbridge.datapath.peerstate import TimestampStore
from linkbridge.errors import ConfigError
from linkbridge.ops.keys import load_keys, new_private_key, public_key_of, read_secret
from linkbridge.wire import drops, frames, noise
from linkbridge.wire.cookie import REPLY_SIZE, SECRET_LIFE, CookieHolder, CookieIssuer
from linkbridge.wire.guard import RecentMessages, TokenBucket
from linkbridge.wire.keys import StaticKeys, encode_key
from linkbridge.wire.noise import public_bytes
from linkbridge.wire.secure import INITIATION_SIZE, SecureChannel
from tests.unit.test_secure import TIMERS, Pair, Side, packet

CHACHA = frozenset({"chacha20-poly1305"})

# Curve25519 points of small order (and their non-canonical twins), as WireGuard and libsodium
# list them: every Diffie-Hellman with one gives zero
LOW_ORDER = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
]
NON_CANONICAL = [
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # p
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # p + 1
    "cdeb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880",  # high bit set
]


def stranger_initiation(pair: Pair, seed: int) -> bytes:
    """A fresh initiation with a valid mac1 for B from a key B does not know: what anyone who
    knows B's public key can make."""
    stranger = X25519PrivateKey.from_private_bytes(random.Random(seed).randbytes(32))
    side = Side(stranger, pair.keys[1], seed)
    return side.start(pair.now)[0]


def test_a_replayed_initiation_is_refused_before_any_work_and_starves_nothing() -> None:
    """One recorded initiation sent 1000 times: one costs Diffie-Hellman work (refused by its
    timestamp), the rest are exact copies dropped before the rate limit; the real peer's
    initiations still make sessions at once."""
    pair = Pair()
    pair.start()
    recorded = next(frame for receiver, frame in pair.recorded
                    if receiver is pair.b and frames.type_nibble(frame[0]) == 0x8)
    pair.tick(1.0)
    for _ in range(1000):
        pair.b.open(recorded, pair.now)
    assert pair.b.drops[drops.HANDSHAKE_DUPLICATE] == 1000
    assert pair.b.drops[drops.HANDSHAKE_RATE] == 0
    for _ in range(5):  # five renewals by A in a row, within the burst
        before = pair.b.channel.handshakes
        pair.a.channel.current = None
        pair.send(pair.a, packet(1))
        pair.run()
        assert pair.b.channel.handshakes == before + 1
    assert pair.delivered[id(pair.b)] == [packet(1)] * 5


def test_random_mac1_initiations_cost_one_mac_each() -> None:
    pair = Pair()
    pair.start()
    rng = random.Random(4)
    for _ in range(2000):
        pair.b.open(bytes([0x80]) + rng.randbytes(INITIATION_SIZE - 1), pair.now)
    assert pair.b.drops[drops.HANDSHAKE_MAC] == 2000
    assert not pair.b.channel.work_waiting  # not one job made
    pair.send(pair.a, packet(1))
    pair.run()
    assert pair.delivered[id(pair.b)] == [packet(1)]


def test_an_initiation_flood_leaves_room_for_the_answer_to_our_own() -> None:
    """Valid-mac1 initiations (anyone who knows B's public key) take the initiations' bucket;
    B's own initiation is still answered and its answer processed: sessions go on, made by B."""
    pair = Pair()
    pair.start()
    for n in range(50):
        pair.b.open(stranger_initiation(pair, 100 + n), pair.now)
    assert pair.b.drops[drops.HANDSHAKE_RATE] >= 40
    before = pair.b.channel.handshakes
    pair.b.channel.current = None
    pair.send(pair.b, packet(7))
    pair.run()
    assert pair.delivered[id(pair.a)] == [packet(7)]
    assert pair.b.channel.handshakes == before + 1


def return_path_pair(seed: int = 1) -> Pair:
    """A pair whose B has a link with a return path (cookie replies)."""
    pair = Pair(seed)
    b = pair.b
    b.channel = SecureChannel(b.channel.keys, TIMERS, b.drop, b.random, lambda: b.wall,
                              return_address=lambda: "198.18.0.1:5555")
    return pair


def test_over_the_rate_a_link_with_a_return_path_answers_with_cookies() -> None:
    """Under a flood of valid-mac1 initiations B answers A's initiation with a cookie reply;
    A resends at once with the cookie's mac2, which only a side that received the reply can
    make: that initiation has a bucket of its own and makes a session."""
    pair = return_path_pair()
    for n in range(20):  # the initiations' bucket is empty
        assert not pair.b.open(stranger_initiation(pair, 200 + n), pair.now)[0]
    assert pair.b.drops[drops.HANDSHAKE_COOKIE] >= 15
    pair.send(pair.a, packet(1))
    pair.run()
    assert pair.delivered[id(pair.b)] == [packet(1)]
    kinds = [(frame[0], frame[1]) for _, frame in pair.recorded]
    assert (frames.EXTENSION_BYTE, frames.COOKIE_REPLY) in kinds
    initiations = [frame for _, frame in pair.recorded if frame[0] >> 4 == 0x8]
    assert [len(frame) for frame in initiations] == [INITIATION_SIZE, INITIATION_SIZE + 16]


HERE = "198.18.0.1:5555"  # where the initiation came from


def test_cookie_replies_are_bound_to_their_initiation_and_expire() -> None:
    own, peer = os.urandom(32), os.urandom(32)
    rng = random.Random(3)
    issuer = CookieIssuer(own, rng.randbytes)
    holder = CookieHolder(own)
    mac1 = rng.randbytes(16)
    reply = issuer.reply(5, mac1, HERE, 0.0)
    assert len(reply) == REPLY_SIZE and CookieHolder.receiver_id(reply) == 5
    assert not holder.accept(reply, rng.randbytes(16), 0.0)  # another initiation's
    assert not CookieHolder(peer).accept(reply, mac1, 0.0)  # from another key
    assert holder.mac2(b"message", 0.0) == b""
    assert holder.accept(reply, mac1, 1.0)
    tag = holder.mac2(b"message", 2.0)
    assert issuer.proven(b"message", tag, HERE, 2.0)
    assert not issuer.proven(b"other", tag, HERE, 2.0)
    assert not issuer.proven(b"message", tag, "198.18.0.9:5555", 2.0)  # one return address
    assert issuer.proven(b"message", tag, HERE, 3.0)  # and back: no cache decides it
    assert issuer.proven(b"message", tag, HERE, SECRET_LIFE + 1)  # the secret before counts
    assert not issuer.proven(b"message", tag, HERE, 2 * SECRET_LIFE + 1)
    assert holder.mac2(b"message", SECRET_LIFE + 1.0) == b""


def test_token_bucket_and_recent_messages() -> None:
    bucket = TokenBucket(5, 1.0)
    assert [bucket.take(0.0) for _ in range(6)] == [True] * 5 + [False]
    assert bucket.take(1.0) and not bucket.take(1.5) and bucket.take(2.0)
    recent = RecentMessages(limit=3)
    for message in (b"a", b"b", b"c", b"a", b"d"):
        recent.add(message)
    assert b"a" in recent and b"b" not in recent and len(recent) == 3


@pytest.mark.parametrize("lower", ["a", "b"])
def test_an_initiation_replayed_after_a_restart_neither_cancels_nor_delays(lower: str) -> None:
    """B restarts and starts its own handshake; an attacker replays A's initiation recorded
    before. Whichever key is the lower, B's session comes with its own round trip (plus, at
    most, the hold of a crossing answer: HOLD_FLOOR here) and both sides send on it."""
    seed = next(seed for seed in range(1, 50)
                if (lambda p: (public_bytes(p.keys[0]) < public_bytes(p.keys[1]))
                    == (lower == "a"))(Pair(seed)))
    pair = Pair(seed)
    pair.start()
    recorded = [frame for receiver, frame in pair.recorded
                if receiver is pair.b and frame[0] >> 4 == 0x8]
    pair.tick(1.0)
    pair.restart_b(seed=77)
    ours = pair.b.start(pair.now)
    pair.deliver(pair.b, recorded[0])  # the replay comes first
    pair.put(pair.b, ours)
    pair.run()
    # the lower key answered a crossing initiation (the replay): its own session waits
    assert (pair.b.channel.held is not None) == (lower == "b")
    pair.tick(0.06)  # a held session is made current after HOLD_FLOOR
    pair.run()
    pair.send(pair.a, packet(1))
    pair.send(pair.b, packet(2))
    pair.run()
    assert pair.delivered[id(pair.b)] == [packet(1)]
    assert pair.delivered[id(pair.a)] == [packet(2)]
    a, b = pair.a.channel, pair.b.channel
    assert a.current is not None and b.current is not None
    assert a.current.first_byte[0] & 0x0F == (b.current.header_bits >> 24) & 0x0F


def test_a_stored_timestamp_refuses_the_replay_after_a_restart() -> None:
    """With --state-dir the newest timestamp survives: the replay is refused, no work done
    for a response, and B's session comes without any hold."""
    pair = Pair(seed=2)
    pair.start()
    recorded = next(frame for receiver, frame in pair.recorded
                    if receiver is pair.b and frame[0] >> 4 == 0x8)
    newest = pair.b.channel.newest_timestamp
    assert newest
    pair.tick(1.0)
    pair.restart_b(seed=99)
    b = pair.b
    b.channel = SecureChannel(b.channel.keys, TIMERS, b.drop, b.random, lambda: b.wall,
                              newest=newest)
    ours = b.start(pair.now)
    pair.deliver(b, recorded)
    assert b.drops == {drops.HANDSHAKE_REPLAY: 1}
    pair.put(b, ours)
    pair.run()
    assert b.channel.current is not None and b.channel.held is None


@pytest.mark.parametrize("peer_hex", LOW_ORDER + NON_CANONICAL)
def test_invalid_and_low_order_peer_keys_are_configuration_errors(peer_hex: str) -> None:
    with pytest.raises(ConfigError, match=r"low-order point|not a Curve25519 public key"):
        StaticKeys(X25519PrivateKey.generate(), bytes.fromhex(peer_hex), ciphers=CHACHA)


def secret_file(directory: Path, name: str, text: str) -> str:
    path = directory / name
    path.write_text(text + "\n")
    path.chmod(0o600)
    return str(path)


def test_keys_that_protect_nothing_are_refused(tmp_path: Path) -> None:
    private = new_private_key()
    mine = secret_file(tmp_path, "a.key", private)
    peer = public_key_of(new_private_key())
    with pytest.raises(ConfigError, match="this side's own public key"):
        load_keys(mine, public_key_of(private), None, CHACHA)
    with pytest.raises(ConfigError, match=r"all zeros.*genpsk"):
        load_keys(mine, peer, secret_file(tmp_path, "zero.psk", encode_key(bytes(32))), CHACHA)
    with pytest.raises(ConfigError, match="holds this side's private key"):
        load_keys(mine, peer, mine, CHACHA)
    assert load_keys(mine, peer, secret_file(tmp_path, "good.psk", new_private_key()), CHACHA)


def test_a_key_file_of_another_user_is_refused_with_the_fix(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give a file to another user")
    path = secret_file(tmp_path, "a.key", new_private_key())
    os.chown(path, 65534, 65534)  # nobody
    with pytest.raises(ConfigError, match=r"owned by \S+, not by this user \(root\) or root: "
                                          r"run `chown root "):
        read_secret(path, "private key")
    os.chown(path, 0, 0)
    assert read_secret(path, "private key")


def test_the_initiators_static_key_never_travels_in_clear() -> None:
    pair = Pair()
    pair.start()
    public_a = public_bytes(pair.keys[0])
    assert pair.recorded and not any(public_a in frame for _, frame in pair.recorded)


def test_the_state_directory_keeps_the_newest_timestamp(tmp_path: Path) -> None:
    peer = os.urandom(32)
    store = TimestampStore(str(tmp_path / "state"), peer)
    assert store.load() == b""
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700
    store.save(bytes.fromhex("0102030405060708"))
    assert TimestampStore(str(tmp_path / "state"), peer).load() == bytes.fromhex(
        "0102030405060708")
    assert TimestampStore(str(tmp_path / "state"), os.urandom(32)).load() == b""  # per peer
    if os.geteuid() == 0:  # --user: the directory is given to that user, who writes it later
        TimestampStore(str(tmp_path / "state"), peer, (65534, 65534)).load()
        assert (tmp_path / "state").stat().st_uid == 65534
    store.path.write_text("not hex\n")
    with pytest.raises(ConfigError, match="does not hold a timestamp: remove it"):
        TimestampStore(str(tmp_path / "state"), peer).load()
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="--state-dir"):
        TimestampStore(str(tmp_path / "file"), peer).load()


def test_the_data_path_never_does_handshake_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a peer's initiation admitted and a renewal due, seal() and open() carry packets
    without any Diffie-Hellman: that work waits for the handshake thread's jobs."""
    pair = Pair()
    pair.start()
    pair.b.open(stranger_initiation(pair, 9), pair.now)
    pair.b.channel.open(stranger_initiation(pair, 10), pair.now)  # a job waits for B's thread
    assert pair.a.channel.current is not None
    pair.a.channel.current.renew_at = pair.now  # and A's session is due for renewal

    def no_work(*args: object) -> bytes:
        raise AssertionError("handshake work on the data path")

    monkeypatch.setattr(noise, "dh", no_work)
    monkeypatch.setattr(noise, "public_bytes", no_work)
    for n in range(100):
        [frame] = pair.a.channel.seal(packet(n), pair.now)
        opened, answers = pair.b.channel.open(frame, pair.now)
        assert opened == packet(n) and not answers
    assert pair.a.channel.work_waiting and pair.b.channel.work_waiting
    monkeypatch.undo()
    assert [frame[0] >> 4 for frame in pair.a.channel.work(pair.now)] == [0x8]
