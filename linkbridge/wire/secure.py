"""The encrypt layer's state machine: handshakes, session keys, rekeying, transport data.

One `SecureChannel` per tunnel. It follows WireGuard's design (Noise_IKpsk2 handshakes of
wire/noise.py, fresh keys per session, counters and a replay window) with a shorter header
for narrow links; docs/security.md is the wire format. Pure: the time (`now`, monotonic
seconds) is passed to every call, and the wall clock (handshake timestamps) and random bytes
are callables given at construction.

    seal(packet, now) -> frames to send       (queues the packet while no session is up)
    open(frame, now)  -> (packet or None, frames to send back)
    open_run(frames, at, packets, now) -> the index open() must take over at (the batch's
                                          fast path: the current session's data frames)
    tick(now)         -> frames to send        (handshake retries; call it now and then)

Every frame that fails a check is counted through `drop(reason)` (reasons in wire/drops.py);
`events` collects log lines for the glue (wrong keys, handshakes) and never raises.
"""

from __future__ import annotations

import base64
import binascii
import copy
import struct
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.constant_time import bytes_eq

from linkbridge.errors import ConfigError
from linkbridge.wire import drops, frames
from linkbridge.wire.frames import frame_byte, low_nibble
from linkbridge.wire.noise import (
    KEY_SIZE,
    TAG_SIZE,
    ZERO_PSK,
    Handshake,
    HandshakeFailed,
    blake2s,
    hmac_blake2s,
    public_bytes,
)
from linkbridge.wire.replay import WINDOW, ReplayWindow

PROLOGUE = b"linkbridge encrypt v1"
LABEL_MAC1 = b"mac1----"
MAC_SIZE = 16
TIMESTAMP_SIZE = 8  # nanoseconds since the Unix epoch, big-endian
CIPHER_SIZE = 1  # the transport ciphers an initiation offers, the one its response chose
COUNTER_SIZE = 3
HEADER_SIZE = 1 + COUNTER_SIZE  # type and key id, counter
OVERHEAD = HEADER_SIZE + TAG_SIZE  # bytes a transport frame adds to a packet: 20
INITIATION_SIZE = (1 + KEY_SIZE + KEY_SIZE + TAG_SIZE + TIMESTAMP_SIZE + CIPHER_SIZE + TAG_SIZE
                   + MAC_SIZE)  # 122
RESPONSE_SIZE = 1 + 1 + KEY_SIZE + CIPHER_SIZE + TAG_SIZE + MAC_SIZE  # 67
COUNTER_LIMIT = 1 << (8 * COUNTER_SIZE)  # a session sends at most this many frames
MAX_REKEY_PACKETS = COUNTER_LIMIT - 4 * WINDOW  # rekeying must start before the counter ends
KEY_IDS = 16  # a key id is the low nibble of a frame's first byte
QUEUE_LIMIT = 64  # packets kept while a handshake is under way
RETRY_BACKOFF = 8  # unanswered initiations are resent at up to this many times `retry`
RATE_BURST = 5.0  # handshake messages processed at once ...
RATE_PER_SECOND = 1.0  # ... and per second after that; the rest are counted drops

_HEADER = struct.Struct(">I")  # a transport frame's first byte and counter
_COUNTER_MASK = COUNTER_LIMIT - 1
_NONCE = struct.Struct("<4xQ")  # Noise's ChaChaPoly nonce (as wire.noise.nonce())


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


@dataclass(frozen=True)
class StaticKeys:
    """This side's private key, the peer's public key and the pre-shared key (zeros: none)."""

    private: X25519PrivateKey
    peer_public: bytes
    psk: bytes = ZERO_PSK
    ciphers: frozenset[str] = frozenset({CHACHA20_POLY1305})  # the transport ciphers allowed
    public: bytes = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "public", public_bytes(self.private))
        if self.public == self.peer_public:
            raise ConfigError("the peer public key is this side's own public key")
        if not self.ciphers or not self.ciphers <= CIPHERS.keys():
            raise ConfigError(f"ciphers must be some of {', '.join(CIPHERS)}, "
                              f"not {', '.join(sorted(self.ciphers)) or 'none'}")


@dataclass(frozen=True)
class Timers:
    """When sessions are renewed, in seconds and packets (docs/security.md, "Timers")."""

    rekey_after: float = 120.0  # a session this old is renewed by its initiator ...
    retry: float = 5.0  # an unanswered initiation is resent after this (then backs off)
    rekey_packets: int = 1 << 22  # ... and one that sent this many frames by its sender

    def __post_init__(self) -> None:
        if not 0 < self.retry < self.rekey_after:
            raise ConfigError(f"the handshake retry ({self.retry:g} s) must be above 0 and "
                              f"below the rekey interval ({self.rekey_after:g} s)")
        if not 1 <= self.rekey_packets <= MAX_REKEY_PACKETS:
            raise ConfigError(f"rekey after 1..{MAX_REKEY_PACKETS} packets, "
                              f"not {self.rekey_packets}")

    @property
    def reject_after(self) -> float:
        """A session this old sends and accepts nothing more (WireGuard: 180 s for 120 s)."""
        return self.rekey_after * 1.5


def handshake_airtime(bit_rate: float, per_byte_bits: float = 10.0) -> float:
    """Seconds an initiation and its response occupy a link of `bit_rate` bit/s (8N1 serial
    framing: 10 line bits a byte); fragment headers and SLIP escapes come on top."""
    return (INITIATION_SIZE + RESPONSE_SIZE) * per_byte_bits / bit_rate


class Keypair:
    """One session's transport keys, counters and the times that end it."""

    def __init__(self, local_id: int, remote_id: int, send_key: bytes, receive_key: bytes,
                 cipher: str, created: float, initiator: bool, timers: Timers) -> None:
        self.local_id = local_id  # the id the peer puts on frames for us
        # the first byte of the frames we receive here, and of those we send (with a counter)
        self.first_byte = bytes((frame_byte(frames.TRANSPORT_DATA, local_id),))
        self.header_bits = frame_byte(frames.TRANSPORT_DATA, remote_id) << 24
        self.cipher = cipher
        aead = CIPHERS[cipher][1]
        self.sender = aead(send_key)
        self.receiver = aead(receive_key)
        self.created = created
        self.initiator = initiator
        self.counter = 0  # of the next frame we send
        self.window = ReplayWindow()
        self.expires = created + timers.reject_after  # sends and accepts nothing after it
        # the sender asks for a new session past these; the responder waits a little longer,
        # so both sides rarely start one at once
        self.renew_at = created + timers.rekey_after + (0 if initiator else timers.retry)
        self.renew_count = timers.rekey_packets

    def seal(self, packet: bytes) -> bytes:
        counter = self.counter
        self.counter = counter + 1
        return _HEADER.pack(self.header_bits | counter) + self.sender.encrypt(
            _NONCE.pack(counter), packet, None)


@dataclass
class Pending:
    """An initiation we sent and wait to see answered."""

    handshake: Handshake
    ephemeral: X25519PrivateKey
    local_id: int
    sent_at: float
    attempts: int


class SecureChannel:
    """The encrypt layer of one tunnel: one peer, up to three sessions (current, previous
    for frames still in flight, next: answered by us, unconfirmed until its first frame)."""

    def __init__(self, keys: StaticKeys, timers: Timers, drop: Callable[[str], None],
                 random: Callable[[int], bytes], wall_clock: Callable[[], int]) -> None:
        self.keys = keys
        self.timers = timers
        self.drop = drop
        self._random = random
        self._wall_clock = wall_clock
        self._mac_in = blake2s(LABEL_MAC1, keys.public)  # checks mac1 of frames to us
        self._mac_out = blake2s(LABEL_MAC1, keys.peer_public)  # signs frames to the peer
        self._offer = cipher_bits(keys.ciphers)
        self.current: Keypair | None = None
        self.previous: Keypair | None = None
        self.next: Keypair | None = None
        self.pending: Pending | None = None
        self.abandoned: Pending | None = None  # ours, given way to the peer's crossing one
        self.queue: deque[bytes] = deque()
        self.events: list[str] = []
        self.handshakes = 0  # sessions set up
        self.last_handshake: int | None = None  # wall clock (ns) of the latest
        self.handshake_s: float | None = None  # the latest of ours: first attempt to session
        self._round_started = 0.0
        self._gave_way = False  # our initiation gave way to the peer's (see _read_initiation)
        self._last_timestamp = b""  # the newest initiation timestamp accepted from the peer
        self._sent_timestamp = 0
        self._tokens = RATE_BURST
        self._tokens_at: float | None = None

    # --- the data path ---------------------------------------------------------------------

    def seal(self, packet: bytes, now: float) -> list[bytes]:
        """Frames that carry `packet` to the peer (and an initiation when one is due)."""
        pair = self.current
        if pair is not None and now < pair.renew_at and pair.counter < pair.renew_count:
            return [pair.seal(packet)]  # the common case, kept short
        return self._seal_slowly(packet, now)

    def seal_many(self, packets: Sequence[bytes], now: float) -> list[bytes]:
        """seal() for each packet, the frames in one list."""
        out: list[bytes] = []
        pair = self.current
        if pair is not None and now < pair.renew_at:  # the common case, kept short
            header_bits, encrypt = pair.header_bits, pair.sender.encrypt
            first = counter = pair.counter
            for packet in packets[:max(0, pair.renew_count - first)]:
                out.append(_HEADER.pack(header_bits | counter)
                           + encrypt(_NONCE.pack(counter), packet, None))
                counter += 1
            pair.counter = counter
            packets = packets[counter - first:]
        for packet in packets:  # what is left: no session, or time to renew it
            out += self.seal(packet, now)
        return out

    def _seal_slowly(self, packet: bytes, now: float) -> list[bytes]:
        pair = self._sendable(now)
        if pair is None:
            if len(self.queue) >= QUEUE_LIMIT:
                self.queue.popleft()
                self.drop(drops.NO_SESSION)
            self.queue.append(packet)
            return self._initiate(now) if self.pending is None else []
        out = [pair.seal(packet)]
        if self.pending is None:  # time or count says: renew
            out += self._initiate(now)
        return out

    def open(self, frame: bytes, now: float) -> tuple[bytes | None, Sequence[bytes]]:
        """The packet a frame from the link carries (None: a drop, a handshake or a
        keepalive) and the frames to send in answer."""
        packets: list[bytes] = []
        if self.open_run((frame,), 0, packets, now):
            return (packets[0] if packets else None), ()
        return self._open_slowly(frame, now)

    def open_run(self, frames: Sequence[bytes], at: int, packets: list[bytes],
                 now: float) -> int:
        """Open frames[at:] of the current session into `packets` (keepalives left out, drops
        counted) as long as they are that session's transport data: the common case, kept
        short. Returns the index of the first frame that needs open() (len(frames): none).

        This touches only what the receiving side owns (the session's receive key and replay
        window), so the glue may run it while another thread seals. Counters accepted in order
        are recorded in the window once per run of them."""
        pair = self.current
        if pair is None or now >= pair.expires:
            return at
        first_byte, decrypt, window, drop = (pair.first_byte, pair.receiver.decrypt,
                                             pair.window, self.drop)
        unpack, nonce = _HEADER.unpack_from, _NONCE.pack
        low, top = -1, window.highest  # accepted, not yet in the window: low..top (low >= 0)
        end = len(frames)
        while at < end:
            frame = frames[at]
            if frame[:1] != first_byte or len(frame) < OVERHEAD:
                break
            at += 1
            counter = unpack(frame)[0] & _COUNTER_MASK
            if counter <= top and (counter >= low >= 0 or not window.fresh(counter)):
                drop(drops.REPLAY)
                continue
            try:
                packet = decrypt(nonce(counter), frame[HEADER_SIZE:], None)
            except InvalidTag:
                drop(drops.AUTH)
                continue
            if counter == top + 1 and low >= 0:
                top = counter
            elif counter > top:
                if low >= 0:
                    window.mark_run(low, top)
                low = top = counter
            else:  # an older counter, inside the window
                window.mark(counter)
            if packet:  # an empty one is a keepalive
                packets.append(packet)
        if low >= 0:
            window.mark_run(low, top)
        return at

    def open_many(self, frames: Sequence[bytes], now: float) -> tuple[list[bytes], list[bytes]]:
        """open() for each frame: the packets (keepalives left out) and the answers."""
        packets: list[bytes] = []
        answers: list[bytes] = []
        at = self.open_run(frames, 0, packets, now)
        while at < len(frames):
            packet, answer = self._open_slowly(frames[at], now)
            answers += answer
            if packet:
                packets.append(packet)
            at = self.open_run(frames, at + 1, packets, now)
        return packets, answers

    def _open_slowly(self, frame: bytes, now: float) -> tuple[bytes | None, Sequence[bytes]]:
        if not frame:
            self.drop(drops.NOT_ENCRYPTED)
            return None, []
        kind = frames.type_nibble(frame[0])
        if kind == frames.TRANSPORT_DATA:
            return self._open_transport(frame, now)
        if kind == frames.HANDSHAKE_INITIATION:
            return None, self._read_initiation(frame, now)
        if kind == frames.HANDSHAKE_RESPONSE:
            return None, self._read_response(frame, now)
        self.drop(drops.NOT_ENCRYPTED)
        return None, []

    def tick(self, now: float) -> list[bytes]:
        """Expire old sessions; resend an unanswered initiation when its time has come."""
        for name in ("previous", "current", "next"):
            pair: Keypair | None = getattr(self, name)
            if pair is not None and now >= pair.expires:
                setattr(self, name, None)
        pending = self.pending
        if pending is not None and now >= pending.sent_at + self._retry_interval(pending):
            if pending.attempts == 3:
                self.events.append(
                    "no handshake response after 3 attempts: is the peer up, and does it have "
                    f"this side's public key {encode_key(self.keys.public)}?")
            return self._initiate(now, pending.attempts)
        return []

    def next_deadline(self) -> float | None:
        """When tick() next has work (a retry), None when nothing is waiting."""
        return None if self.pending is None else (
            self.pending.sent_at + self._retry_interval(self.pending))

    def start(self, now: float) -> list[bytes]:
        """The initiation a side sends when it starts, so that a restarted side and its peer
        agree on fresh keys before either has traffic."""
        return self._initiate(now)

    def status(self, now: float) -> dict[str, object]:
        pair = self.current
        state = ("established" if self._sendable(now) is not None
                 else "handshaking" if self.pending is not None else "no session")
        return {
            "state": state,
            "handshakes": self.handshakes,
            "last_handshake": None if self.last_handshake is None
            else round(self.last_handshake / 1e9, 3),
            "session_age_s": None if pair is None else round(now - pair.created, 1),
            "handshake_s": None if self.handshake_s is None else round(self.handshake_s, 3),
            "cipher": None if pair is None else pair.cipher,
            "public_key": encode_key(self.keys.public),
        }

    # --- transport data --------------------------------------------------------------------

    def _sendable(self, now: float) -> Keypair | None:
        pair = self.current
        if pair is None or pair.counter >= COUNTER_LIMIT or now >= pair.expires:
            return None
        return pair

    def _pair_for(self, key_id: int) -> Keypair | None:
        for pair in (self.current, self.next, self.previous):
            if pair is not None and pair.local_id == key_id:
                return pair
        return None

    def _open_transport(self, frame: bytes, now: float) -> tuple[bytes | None, list[bytes]]:
        if len(frame) < OVERHEAD:
            self.drop(drops.AUTH)
            return None, []
        pair = self._pair_for(low_nibble(frame[0]))
        if pair is None or now >= pair.expires:
            self.drop(drops.UNKNOWN_KEY)
            # the peer has a session we do not (we restarted): ask for a new one
            answer = self._initiate(now) if self.pending is None and (
                self._sendable(now) is None) else []
            return None, answer
        counter = _HEADER.unpack_from(frame)[0] & _COUNTER_MASK
        if not pair.window.fresh(counter):
            self.drop(drops.REPLAY)
            return None, []
        try:
            packet = pair.receiver.decrypt(_NONCE.pack(counter), frame[HEADER_SIZE:], None)
        except InvalidTag:
            self.drop(drops.AUTH)
            return None, []
        pair.window.mark(counter)
        out: list[bytes] = []
        if pair is self.next:  # the initiator's first frame confirms the session we answered
            self.previous, self.current, self.next = self.current, pair, None
            if self._gave_way:
                self.handshake_s, self._gave_way = now - self._round_started, False
            out = self._flush(pair)
        return (packet or None), out  # an empty packet is a keepalive

    def _flush(self, pair: Keypair) -> list[bytes]:
        out = [pair.seal(packet) for packet in self.queue]
        self.queue.clear()
        return out

    # --- handshakes ------------------------------------------------------------------------

    def _retry_interval(self, pending: Pending) -> float:
        return self.timers.retry * min(RETRY_BACKOFF, 1 << max(0, pending.attempts - 3))

    def _new_id(self) -> int:
        used = {pair.local_id for pair in (self.current, self.previous, self.next) if pair}
        used |= {waiting.local_id for waiting in (self.pending, self.abandoned) if waiting}
        start = self._random(1)[0] % KEY_IDS
        return next(i % KEY_IDS for i in range(start, start + KEY_IDS) if i % KEY_IDS not in used)

    def _ephemeral(self) -> X25519PrivateKey:
        return X25519PrivateKey.from_private_bytes(self._random(KEY_SIZE))

    def _mac(self, key: bytes, message: bytes) -> bytes:
        return hmac_blake2s(key, message)[:MAC_SIZE]

    def _initiate(self, now: float, attempts: int = 0) -> list[bytes]:
        """A new initiation (new ephemeral key, new timestamp) in place of any pending one."""
        local_id = self._new_id() if self.pending is None else self.pending.local_id
        if attempts == 0:
            self._round_started, self.abandoned = now, None
        handshake = Handshake(PROLOGUE, self.keys.peer_public, self.keys.psk)
        ephemeral = self._ephemeral()
        stamp = max(self._wall_clock(), self._sent_timestamp + 1)
        self._sent_timestamp = stamp
        payload = stamp.to_bytes(TIMESTAMP_SIZE, "big") + bytes((self._offer,))
        body = handshake.write_initiation(self.keys.private, ephemeral, self.keys.peer_public,
                                          payload)
        message = bytes((frame_byte(frames.HANDSHAKE_INITIATION, local_id),)) + body
        self.pending = Pending(handshake, ephemeral, local_id, now, attempts + 1)
        return [message + self._mac(self._mac_out, message)]

    def _admitted(self, frame: bytes, size: int, now: float) -> bool:
        """Size, mac1 and the rate limit: the cheap checks before any Diffie-Hellman."""
        if len(frame) != size:
            self.drop(drops.HANDSHAKE_MALFORMED)
            return False
        if not bytes_eq(self._mac(self._mac_in, frame[:-MAC_SIZE]), frame[-MAC_SIZE:]):
            self.drop(drops.HANDSHAKE_MAC)
            self.events.append("a handshake message was not made for this side's public key "
                               f"{encode_key(self.keys.public)}: the peer's --peer-public-key "
                               "is wrong (or someone else is sending)")
            return False
        if self._tokens_at is not None:
            self._tokens = min(RATE_BURST,
                               self._tokens + (now - self._tokens_at) * RATE_PER_SECOND)
        self._tokens_at = now
        if self._tokens < 1:
            self.drop(drops.HANDSHAKE_RATE)
            return False
        self._tokens -= 1
        return True

    def _read_initiation(self, frame: bytes, now: float) -> list[bytes]:
        if not self._admitted(frame, INITIATION_SIZE, now):
            return []
        handshake = Handshake(PROLOGUE, self.keys.public, self.keys.psk)
        try:
            payload = handshake.read_initiation(self.keys.private, frame[1:-MAC_SIZE])
        except HandshakeFailed:
            self.drop(drops.HANDSHAKE_AUTH)
            return []
        if not bytes_eq(handshake.remote_static, self.keys.peer_public):
            self.drop(drops.HANDSHAKE_PEER)
            self.events.append(f"handshake from key {encode_key(handshake.remote_static)}, not "
                               f"the configured peer {encode_key(self.keys.peer_public)}")
            return []
        stamp, offer = payload[:TIMESTAMP_SIZE], payload[TIMESTAMP_SIZE]
        if stamp <= self._last_timestamp:
            self.drop(drops.HANDSHAKE_REPLAY)
            return []
        common = cipher_names(offer & self._offer)
        if not common:
            self._no_common_cipher(offer)
            return []
        self._last_timestamp = stamp
        if self.pending is not None and self.keys.public < self.keys.peer_public:
            # both sides initiated at once (a start, a renewal): the higher public key's
            # handshake makes the session, ours gives way (its answer is absorbed)
            self.abandoned, self.pending, self._gave_way = self.pending, None, True
        local_id = self._new_id()
        body = handshake.write_response(self._ephemeral(), bytes((CIPHERS[common[0]][0],)))
        message = bytes((frame_byte(frames.HANDSHAKE_RESPONSE, local_id),
                         low_nibble(frame[0]))) + body
        to_peer, to_us = handshake.split()
        self.next = Keypair(local_id, low_nibble(frame[0]), to_us, to_peer, common[0], now, False,
                            self.timers)
        self._completed()
        return [message + self._mac(self._mac_out, message)]

    def _read_response(self, frame: bytes, now: float) -> list[bytes]:
        pending = next((waiting for waiting in (self.pending, self.abandoned)
                        if waiting is not None and frame[1:2] == bytes((waiting.local_id,))),
                       None)
        if len(frame) == RESPONSE_SIZE and pending is None:
            self.drop(drops.HANDSHAKE_UNEXPECTED)
            return []
        if not self._admitted(frame, RESPONSE_SIZE, now):
            return []
        assert pending is not None  # a response of the right size matched it above
        handshake = copy.copy(pending.handshake)  # a forged response leaves the original intact
        try:
            chosen = handshake.read_response(self.keys.private, pending.ephemeral,
                                             frame[2:-MAC_SIZE])[0]
        except HandshakeFailed:
            self.drop(drops.HANDSHAKE_AUTH)
            self.events.append("a handshake response does not authenticate: the pre-shared "
                               "keys differ, or the peer does not hold the private key of "
                               "--peer-public-key")
            return []
        names = cipher_names(chosen)
        if len(names) != 1 or not chosen & self._offer:
            self._no_common_cipher(chosen)
            return []
        if pending is self.abandoned:  # the answer to an initiation that gave way: no session
            self.abandoned = None
            return []
        to_peer, to_us = handshake.split()
        pair = Keypair(pending.local_id, low_nibble(frame[0]), to_peer, to_us, names[0], now, True,
                       self.timers)
        self.previous, self.current, self.pending = self.current, pair, None
        self.handshake_s = now - self._round_started
        self._completed()
        return self._flush(pair) or [pair.seal(b"")]  # a keepalive confirms it

    def _no_common_cipher(self, peer: int) -> None:
        self.drop(drops.HANDSHAKE_CIPHER)
        self.events.append(f"the peer allows the ciphers {', '.join(cipher_names(peer)) or '?'}, "
                           f"this side {', '.join(cipher_names(self._offer))}: give both sides "
                           "one --cipher they share (or auto)")

    def _completed(self) -> None:
        self.handshakes += 1
        self.last_handshake = self._wall_clock()
