"""The encrypt layer's state machine: handshakes, session keys, rekeying, transport data.

One `SecureChannel` per tunnel. It follows WireGuard's design (Noise_IKpsk2 handshakes of
wire/noise.py, fresh keys per session, counters and a replay window) with a shorter header
for narrow links; docs/security.md is the wire format. Pure: the time (`now`, monotonic
seconds) is passed to every call, and the wall clock (handshake timestamps) and random bytes
are callables given at construction.

    seal(packet, now) -> frames to send       (queues the packet while no session is up)
    seal_current(packet, now) -> its frame, or None: seal() must take it (the fast path)
    open(frame, now)  -> (packet or None, frames to send back)
    open_run(frames, at, packets, now) -> the index open() must take over at (the batch's
                                          fast path: the current session's data frames)
    open_current(frame, now) -> its packet (b"": none), or None: open() must take it
    tick(now)         -> frames to send        (retries, expiry; call it now and then)
    take_job(now) -> job; job.run(); finish(job, now) -> frames to send
                       (the handshakes' Diffie-Hellman work, wire/handshake.py: run() needs
                        no lock; work(now) does all three for a caller with one thread)

Handshake messages pass cheap checks first (size, an exact copy of a recent one, mac1, the
rate limits of wire/guard.py, cookies of wire/cookie.py on a link with a return path) and
only then become jobs. Every frame that fails a check is counted through `drop(reason)`
(reasons in wire/drops.py); `events` collects log lines for the glue (wrong keys, handshakes)
and never raises.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.constant_time import bytes_eq

from linkbridge.errors import ConfigError
from linkbridge.wire import drops, frames
from linkbridge.wire.ciphers import (
    AES_256_GCM,
    CHACHA20_POLY1305,
    CIPHERS,
    Costs,
    cipher_bits,
    cipher_names,
    encode_costs,
)
from linkbridge.wire.cookie import MAC2_SIZE, CookieHolder, CookieIssuer
from linkbridge.wire.frames import frame_byte, low_nibble
from linkbridge.wire.guard import RecentMessages, TokenBucket
from linkbridge.wire.handshake import (
    CIPHER_SIZE,
    INITIATION_SIZE,
    LEGACY_INITIATION_SIZE,
    MAC_SIZE,
    RESPONSE_SIZE,
    TIMESTAMP_SIZE,
    Initiation,
    InitiationRead,
    Job,
    Pending,
    ResponseRead,
)
from linkbridge.wire.keys import StaticKeys, decode_key, encode_key
from linkbridge.wire.noise import KEY_SIZE, TAG_SIZE, blake2s, hmac_blake2s
from linkbridge.wire.replay import WINDOW, ReplayWindow

__all__ = [  # what other modules take from here, some defined in the modules it builds on
    "AES_256_GCM", "CHACHA20_POLY1305", "CIPHERS", "CIPHER_SIZE", "INITIATION_SIZE",
    "OVERHEAD", "RESPONSE_SIZE", "SecureChannel", "StaticKeys", "Timers", "decode_key",
    "encode_key",
]

LABEL_MAC1 = b"mac1----"
COUNTER_SIZE = 3
HEADER_SIZE = 1 + COUNTER_SIZE  # type and key id, counter
OVERHEAD = HEADER_SIZE + TAG_SIZE  # bytes a transport frame adds to a packet: 20
COUNTER_LIMIT = 1 << (8 * COUNTER_SIZE)  # a session sends at most this many frames
MAX_REKEY_PACKETS = COUNTER_LIMIT - 4 * WINDOW  # rekeying must start before the counter ends
KEY_IDS = 16  # a key id is the low nibble of a frame's first byte
QUEUE_LIMIT = 64  # packets kept while a handshake is under way
RETRY_BACKOFF = 8  # unanswered initiations are resent at up to this many times `retry`
RATE_BURST = 5.0  # handshake messages of one kind processed at once ...
RATE_PER_SECOND = 1.0  # ... and per second after that; the rest are counted drops
JOBS_LIMIT = 16  # admitted handshake messages waiting for their Diffie-Hellman work
HOLD_FLOOR = 0.05  # seconds: see SecureChannel._hold()

_HEADER = struct.Struct(">I")  # a transport frame's first byte and counter
_COUNTER_MASK = COUNTER_LIMIT - 1
_NONCE = struct.Struct("<4xQ")  # Noise's ChaChaPoly nonce (as wire.noise.nonce())


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
        # so both sides rarely start one at once (never past the end: the fast paths seal
        # only before renew_at, so an expired session is never sealed on)
        self.renew_at = min(created + timers.rekey_after + (0 if initiator else timers.retry),
                            self.expires)
        self.renew_count = timers.rekey_packets

    def seal(self, packet: bytes) -> bytes:
        counter = self.counter
        self.counter = counter + 1
        return _HEADER.pack(self.header_bits | counter) + self.sender.encrypt(
            _NONCE.pack(counter), packet, None)



@dataclass
class Held:
    """The session our own initiation made while we answered a crossing one of the peer's
    (see SecureChannel._finish_response): kept back until `until`."""

    pair: Keypair
    until: float
    round_trip: float  # of our initiation it answered


def initiation_size(frame: bytes) -> int | None:
    """The size of the initiation message `frame` starts with (INITIATION_SIZE, or
    LEGACY_INITIATION_SIZE without the costs), a cookie's mac2 after it or not; None when its
    length is neither."""
    return next((size for size in (INITIATION_SIZE, LEGACY_INITIATION_SIZE)
                 if len(frame) in (size, size + MAC2_SIZE)), None)


class SecureChannel:
    """The encrypt layer of one tunnel: one peer, up to three sessions (current, previous
    for frames still in flight, next: answered by us, unconfirmed until its first frame).

    `return_address`: names the one address the link below accepts frames from and sends to
    now (udp:, a multipoint peer's station on it, which may move), which makes cookie replies
    worth sending; None on links without one. `newest`: the newest
    initiation timestamp accepted from the peer before (kept across restarts by the glue in
    its state directory; `newest_timestamp` is the current one). `costs`: this side's cost
    byte for each cipher it measured (wire/ciphers.py; none: the fixed order decides).
    """

    def __init__(self, keys: StaticKeys, timers: Timers, drop: Callable[[str], None],
                 random: Callable[[int], bytes], wall_clock: Callable[[], int],
                 return_address: Callable[[], str] | None = None, newest: bytes = b"",
                 costs: Costs | None = None) -> None:
        self.keys = keys
        self.timers = timers
        self.drop = drop
        self._random = random
        self._wall_clock = wall_clock
        self._mac_in = blake2s(LABEL_MAC1, keys.public)  # checks mac1 of frames to us
        self._mac_out = blake2s(LABEL_MAC1, keys.peer_public)  # signs frames to the peer
        self._offer = cipher_bits(keys.ciphers)
        self._costs: Costs = dict(costs or {})
        self._return_address = return_address
        self._issuer = None if return_address is None else CookieIssuer(keys.public, random)
        self._holder = CookieHolder(keys.peer_public)
        self.current: Keypair | None = None
        self.previous: Keypair | None = None
        self.next: Keypair | None = None
        self.pending: Pending | None = None
        self.abandoned: Pending | None = None  # ours, given way to the peer's crossing one
        self.held: Held | None = None
        self.queue: deque[bytes] = deque()
        self.events: list[str] = []
        self.handshakes = 0  # sessions set up
        self.last_handshake: int | None = None  # wall clock (ns) of the latest
        self.handshake_s: float | None = None  # the latest of ours: first attempt to session
        self.newest_timestamp = newest  # the newest initiation timestamp accepted from the peer
        self._round_started = 0.0
        self._crossed = False  # `next` answers the peer's initiation that crossed our pending
        self._sent_timestamp = 0
        self._recent = RecentMessages()
        self._plain = TokenBucket(RATE_BURST, RATE_PER_SECOND)  # initiations
        self._proven = TokenBucket(RATE_BURST, RATE_PER_SECOND)  # ... with a cookie's mac2
        self._responses = TokenBucket(RATE_BURST, RATE_PER_SECOND)  # answers to ours
        self._jobs: deque[InitiationRead | ResponseRead] = deque()
        self._initiation_due: int | None = None  # attempts of the initiation to replace
        self._writing = False  # an Initiation job was taken and is not finished yet

    # --- the data path ---------------------------------------------------------------------

    def seal(self, packet: bytes, now: float) -> list[bytes]:
        """Frames that carry `packet` to the peer (and an initiation when one is due)."""
        frame = self.seal_current(packet, now)
        return [frame] if frame is not None else self._seal_slowly(packet, now)

    def seal_current(self, packet: bytes, now: float) -> bytes | None:
        """The frame of `packet` on the current session: the common case, kept short. None
        when seal() has more to do (no session, or time to renew it)."""
        pair = self.current
        if pair is None or now >= pair.renew_at or (counter := pair.counter) >= pair.renew_count:
            return None
        pair.counter = counter + 1  # Keypair.seal(), inline: this is the per-packet path
        return _HEADER.pack(pair.header_bits | counter) + pair.sender.encrypt(
            _NONCE.pack(counter), packet, None)

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
            self._want_initiation()
            return []
        self._want_initiation()  # time or count says: renew
        return [pair.seal(packet)]

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

    def open_current(self, frame: bytes, now: float) -> bytes | None:
        """open_run() for one frame, kept shorter: its plaintext (empty for a keepalive or a
        counted drop), or None when it is not the current session's data (open() takes it)."""
        pair = self.current
        if (pair is None or now >= pair.expires or frame[:1] != pair.first_byte
                or len(frame) < OVERHEAD):
            return None
        return self._authentic(pair, frame) or b""

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
            return None, self._admit_initiation(frame, now)
        if kind == frames.HANDSHAKE_RESPONSE:
            self._admit_response(frame, now)
            return None, []
        if frames.extension_subtype(frame) == frames.COOKIE_REPLY:
            self._read_cookie_reply(frame, now)
            return None, []
        self.drop(drops.NOT_ENCRYPTED)
        return None, []

    def tick(self, now: float) -> list[bytes]:
        """Expire old sessions; resend an unanswered initiation when its time has come; make
        a held session current when its time has come."""
        for name in ("previous", "current", "next"):
            pair: Keypair | None = getattr(self, name)
            if pair is not None and now >= pair.expires:
                setattr(self, name, None)
        pending = self.pending
        if (pending is not None and self._initiation_due is None and not self._writing
                and now >= pending.sent_at + self._retry_interval(pending)):
            if pending.attempts == 3:
                self.events.append(
                    "no handshake response after 3 attempts: is the peer up, and does it have "
                    f"this side's public key {encode_key(self.keys.public)}?")
            self._initiation_due = pending.attempts
        held = self.held
        if held is not None and now >= held.until:
            # no sign that the crossing initiation we answered was live (a replay?): ours
            self.held, self.next, self._crossed = None, None, False
            return self._install(held.pair, now)
        return []

    def next_deadline(self) -> float | None:
        """When tick() next has work (a retry, a held session), None when nothing waits."""
        times = [self.pending.sent_at + self._retry_interval(self.pending)] if self.pending else []
        times += [self.held.until] if self.held else []
        return min(times, default=None)

    def start(self, now: float) -> None:
        """Ask for the initiation a side sends when it starts, so that a restarted side and its
        peer agree on fresh keys before either has traffic (the next job)."""
        self._want_initiation()

    @property
    def work_waiting(self) -> bool:
        """Whether take_job() has a job: the glue wakes its handshake thread."""
        return bool(self._jobs) or self._initiation_due is not None

    def take_job(self, now: float) -> Job | None:
        """The next handshake step (answers to ours first, then our initiation, then the
        peer's), with what it needs from this channel; None when nothing waits."""
        if self._jobs and isinstance(self._jobs[0], ResponseRead):
            return self._jobs.popleft()
        if self._initiation_due is not None:
            attempts, self._initiation_due, self._writing = self._initiation_due, None, True
            if attempts == 0:
                self._round_started, self.abandoned = now, None
            stamp = max(self._wall_clock(), self._sent_timestamp + 1)
            self._sent_timestamp = stamp
            return Initiation(self.keys, self._ephemeral(),
                              stamp.to_bytes(TIMESTAMP_SIZE, "big") + bytes((self._offer,))
                              + encode_costs(self._costs), attempts)
        if self._jobs:
            job = self._jobs.popleft()
            if isinstance(job, InitiationRead):  # what it needs now, not when it came
                job.newest, job.ephemeral = self.newest_timestamp, self._ephemeral()
            return job
        return None

    def finish(self, job: Job, now: float) -> list[bytes]:
        """Apply what `job.run()` found; the frames to send."""
        if isinstance(job, Initiation):
            return self._finish_initiation(job, now)
        if job.failed:
            self._failed(job)
            return []
        if isinstance(job, InitiationRead):
            return self._finish_initiation_read(job, now)
        return self._finish_response(job, now)

    def work(self, now: float) -> list[bytes]:
        """Every waiting job, taken, run and finished in this thread: the frames to send."""
        out: list[bytes] = []
        while (job := self.take_job(now)) is not None:
            job.run()
            out += self.finish(job, now)
        return out

    def status(self, now: float) -> dict[str, object]:
        pair = self.current
        state = ("established" if self._sendable(now) is not None
                 else "handshaking"
                 if self.pending or self.held or self._writing or self.work_waiting
                 else "no session")
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

    def vouches(self, frame: bytes, now: float) -> bool:
        """Whether `frame` proves that the peer sent it: transport data that authenticates
        under one of this channel's sessions with a counter its replay window has not seen,
        or an initiation from the peer's key newer than every one accepted (two
        Diffie-Hellman operations). A multipoint peer roams on it (docs/multipoint.md).
        Changes nothing and counts nothing: the frame is opened for real afterwards. Like
        open_run(), it touches only what the receiving side owns."""
        if frame and frames.type_nibble(frame[0]) == frames.HANDSHAKE_INITIATION:
            return self._vouches_initiation(frame)
        if len(frame) < OVERHEAD or frames.type_nibble(frame[0]) != frames.TRANSPORT_DATA:
            return False
        pair = self._pair_for(low_nibble(frame[0]))
        if pair is None or now >= pair.expires:
            return False
        counter = _HEADER.unpack_from(frame)[0] & _COUNTER_MASK
        if not pair.window.fresh(counter):
            return False
        try:
            pair.receiver.decrypt(_NONCE.pack(counter), frame[HEADER_SIZE:], None)
        except InvalidTag:
            return False
        return True

    def _vouches_initiation(self, frame: bytes) -> bool:
        """vouches() for an initiation: the cheap checks first (size, a copy, mac1)."""
        size = initiation_size(frame)
        if size is None:
            return False
        message = frame[:size]
        if message in self._recent or not bytes_eq(
                self._mac(self._mac_in, message[:-MAC_SIZE]), message[-MAC_SIZE:]):
            return False
        read = InitiationRead(self.keys, message, self._offer, self._costs,
                              newest=self.newest_timestamp)
        return read.read() is not None

    def _open_transport(self, frame: bytes, now: float) -> tuple[bytes | None, list[bytes]]:
        if len(frame) < OVERHEAD:
            self.drop(drops.AUTH)
            return None, []
        pair = self._pair_for(low_nibble(frame[0]))
        if pair is None or now >= pair.expires:
            self.drop(drops.UNKNOWN_KEY)
            if self._sendable(now) is None:  # the peer has a session we do not (we restarted)
                self._want_initiation()
            return None, []
        packet = self._authentic(pair, frame)
        if packet is None:
            return None, []
        out: list[bytes] = []
        if pair is self.next:  # the initiator's first frame confirms the session we answered
            self.previous, self.current, self.next = self.current, pair, None
            self._completed()
            if self._crossed:  # the crossing handshake was live: ours gives way to it
                self.handshake_s, self._crossed = now - self._round_started, False
                if self.pending is not None:
                    self.abandoned, self.pending = self.pending, None
                self.held = None
            out = self._flush(pair)
        return (packet or None), out  # an empty packet is a keepalive

    def _authentic(self, pair: Keypair, frame: bytes) -> bytes | None:
        """The plaintext of a transport frame of `pair`'s, its counter recorded; None for a
        counted drop (a replay, or a frame that does not authenticate)."""
        counter = _HEADER.unpack_from(frame)[0] & _COUNTER_MASK
        window = pair.window
        if counter <= window.highest and not window.fresh(counter):
            self.drop(drops.REPLAY)
            return None
        try:
            packet = pair.receiver.decrypt(_NONCE.pack(counter), frame[HEADER_SIZE:], None)
        except InvalidTag:
            self.drop(drops.AUTH)
            return None
        window.mark(counter)
        return packet

    def _flush(self, pair: Keypair) -> list[bytes]:
        out = [pair.seal(packet) for packet in self.queue]
        self.queue.clear()
        return out

    # --- handshakes ------------------------------------------------------------------------

    def _retry_interval(self, pending: Pending) -> float:
        return self.timers.retry * min(RETRY_BACKOFF, 1 << max(0, pending.attempts - 3))

    def _want_initiation(self) -> None:
        """Ask for a new round of initiations unless one is under way (pending, held, due,
        or being written: a second one would replace the first after it was sent)."""
        if (self.pending is None and self.held is None and self._initiation_due is None
                and not self._writing):
            self._initiation_due = 0

    def _new_id(self) -> int:
        used = {pair.local_id for pair in (self.current, self.previous, self.next) if pair}
        used |= {waiting.local_id for waiting in (self.pending, self.abandoned) if waiting}
        used |= {self.held.pair.local_id} if self.held else set()
        start = self._random(1)[0] % KEY_IDS
        return next(i % KEY_IDS for i in range(start, start + KEY_IDS) if i % KEY_IDS not in used)

    def _ephemeral(self) -> X25519PrivateKey:
        return X25519PrivateKey.from_private_bytes(self._random(KEY_SIZE))

    def _mac(self, key: bytes, message: bytes) -> bytes:
        return hmac_blake2s(key, message)[:MAC_SIZE]

    def _finish_initiation(self, job: Initiation, now: float) -> list[bytes]:
        """Our initiation (new ephemeral key, new timestamp, new key id) in place of any
        pending one; with a cookie's mac2 while the peer's last cookie is fresh. A late answer
        to the one it replaces finds no initiation of its id waiting: handshake_unexpected."""
        self._writing = False
        local_id = self._new_id()  # not the pending one's
        message = bytes((frame_byte(frames.HANDSHAKE_INITIATION, local_id),)) + job.body
        message += self._mac(self._mac_out, message)
        mac2 = self._holder.mac2(message, now)
        self.pending = Pending(job.handshake, job.ephemeral, local_id, now, job.attempts + 1,
                               message[-MAC_SIZE:], bool(mac2))
        return [message + mac2]

    def _valid_mac1(self, message: bytes) -> bool:
        if bytes_eq(self._mac(self._mac_in, message[:-MAC_SIZE]), message[-MAC_SIZE:]):
            return True
        self.drop(drops.HANDSHAKE_MAC)
        self.events.append("a handshake message was not made for this side's public key "
                           f"{encode_key(self.keys.public)}: the peer's --peer-public-key "
                           "is wrong (or someone else is sending)")
        return False

    def _fresh(self, message: bytes) -> bool:
        """False (a counted drop) for an exact copy of a handshake message seen lately: a
        replay, refused before any rate limit or Diffie-Hellman."""
        if message in self._recent:
            self.drop(drops.HANDSHAKE_DUPLICATE)
            return False
        return True

    def _queue(self, job: InitiationRead | ResponseRead, bucket: TokenBucket,
               now: float) -> bool:
        """Queue a job if `bucket` and the queue have room; False when they have none."""
        if len(self._jobs) >= JOBS_LIMIT or not bucket.take(now):
            return False
        self._jobs.append(job)
        return True

    def _admit_initiation(self, frame: bytes, now: float) -> list[bytes]:
        """The cheap checks of an initiation, in order of cost: size, an exact copy, mac1,
        then the rate limit of its kind (with a valid cookie mac2 or without); over the limit
        on a link with a return path the answer is a cookie reply. An initiation without the
        costs (LEGACY_INITIATION_SIZE) is read too."""
        size = initiation_size(frame)
        if size is None:
            self.drop(drops.HANDSHAKE_MALFORMED)
            return []
        message = frame[:size]
        if not self._fresh(message) or not self._valid_mac1(message):
            return []
        self._recent.add(message)
        issuer, address = self._issuer, self._return_address
        source = "" if address is None else address()
        proven = (issuer is not None and len(frame) > size
                  and issuer.proven(message, frame[size:], source, now))
        job = InitiationRead(self.keys, message, self._offer, self._costs)
        if self._queue(job, self._proven if proven else self._plain, now):
            return []
        if issuer is not None and not proven:
            self.drop(drops.HANDSHAKE_COOKIE)
            return [issuer.reply(low_nibble(frame[0]), message[-MAC_SIZE:], source, now)]
        self.drop(drops.HANDSHAKE_RATE)
        self.events.append("handshake messages over the rate limit are dropped "
                           "(handshake_rate): a flood, or a replay of a recorded one")
        return []

    def _waiting_for(self, key_id: int) -> Pending | None:
        return next((waiting for waiting in (self.pending, self.abandoned)
                     if waiting is not None and key_id == waiting.local_id), None)

    def _admit_response(self, frame: bytes, now: float) -> None:
        """The cheap checks of a response: size, an exact copy, one of ours waiting for it,
        mac1, then the responses' own rate limit (initiation floods never touch it)."""
        if len(frame) != RESPONSE_SIZE:
            self.drop(drops.HANDSHAKE_MALFORMED)
            return
        if not self._fresh(frame):
            return
        pending = self._waiting_for(frame[1])
        if pending is None:
            self.drop(drops.HANDSHAKE_UNEXPECTED)
            return
        if not self._valid_mac1(frame):
            return
        self._recent.add(frame)
        if not self._queue(ResponseRead(self.keys, frame, pending, self._offer), self._responses,
                           now):
            self.drop(drops.HANDSHAKE_RATE)

    def _read_cookie_reply(self, frame: bytes, now: float) -> None:
        """Keep the cookie of a reply to our pending initiation; when that initiation went
        without mac2, send the next one with it at once."""
        key_id = CookieHolder.receiver_id(frame)
        if key_id is None:
            self.drop(drops.HANDSHAKE_MALFORMED)
            return
        pending = self.pending
        if pending is None or pending.local_id != key_id:
            self.drop(drops.HANDSHAKE_UNEXPECTED)
            return
        if not self._holder.accept(frame, pending.mac1, now):
            self.drop(drops.HANDSHAKE_AUTH)
            return
        if not pending.with_mac2 and self._initiation_due is None:
            self._initiation_due = pending.attempts - 1  # a resend, not one more attempt

    def _failed(self, job: InitiationRead | ResponseRead) -> None:
        """Count a job that found its message wanting, and say why where a person can help."""
        self.drop(job.failed)
        if job.failed == drops.HANDSHAKE_CIPHER:
            self._no_common_cipher(job.peer_offer if isinstance(job, InitiationRead)
                                   else job.chosen)
        elif job.failed == drops.HANDSHAKE_PEER and isinstance(job, InitiationRead):
            self.events.append(f"handshake from key {encode_key(job.remote_static)}, not "
                               f"the configured peer {encode_key(self.keys.peer_public)}")
        elif job.failed == drops.HANDSHAKE_AUTH and isinstance(job, ResponseRead):
            self.events.append("a handshake response does not authenticate: the pre-shared "
                               "keys differ, or the peer does not hold the private key of "
                               "--peer-public-key")

    def _finish_initiation_read(self, job: InitiationRead, now: float) -> list[bytes]:
        """Answer an authentic initiation newer than any before.

        One that crosses our pending initiation is answered and its session kept as next;
        if our public key is the lower, ours gives way to it, but only once the peer's first
        frame on it shows that it was live (a replayed initiation never confirms): until
        then our initiation stays pending, and an answer to it is held (_finish_response)."""
        if job.stamp <= self.newest_timestamp:  # a newer one was accepted meanwhile
            self.drop(drops.HANDSHAKE_REPLAY)
            return []
        self.newest_timestamp = job.stamp
        held = self.held
        if held is not None:  # crossing too: the held session waits for this one's sign
            self._crossed = True
            held.until = max(held.until, now + self._hold(held.round_trip))
        elif self.pending is not None:
            self._crossed = self.keys.public < self.keys.peer_public
        else:
            self._crossed = False
        initiator_id = low_nibble(job.frame[0])
        local_id = self._new_id()
        message = bytes((frame_byte(frames.HANDSHAKE_RESPONSE, local_id), initiator_id))
        message += job.body
        self.next = Keypair(local_id, initiator_id, job.to_us, job.to_peer, job.cipher, now,
                            False, self.timers)
        return [message + self._mac(self._mac_out, message)]

    def _finish_response(self, job: ResponseRead, now: float) -> list[bytes]:
        """Make the session an authentic answer to our pending initiation gives.

        While the session we answered for a crossing initiation waits for its first frame,
        ours is held for _hold() and made current only if that frame has not come by then
        (see tick())."""
        pending = job.pending
        if pending is self.abandoned:  # the answer to an initiation that gave way: no session
            self.abandoned = None
            return []
        if pending is not self.pending:  # replaced by a retry meanwhile
            self.drop(drops.HANDSHAKE_UNEXPECTED)
            return []
        pair = Keypair(pending.local_id, low_nibble(job.frame[0]), job.to_peer, job.to_us,
                       job.cipher, now, True, self.timers)
        self.pending = None
        if self._crossed and self.next is not None:
            round_trip = now - pending.sent_at
            self.held = Held(pair, now + self._hold(round_trip), round_trip)
            return []
        return self._install(pair, now)

    def _hold(self, round_trip: float) -> float:
        """How long a session is held for the peer's sign that its crossing initiation was
        live: that sign (its first frame) comes at most one round trip after the answer to
        ours, so twice that round trip (HOLD_FLOOR at least, the retry interval at most)."""
        return min(self.timers.retry, max(HOLD_FLOOR, 2 * round_trip))

    def _install(self, pair: Keypair, now: float) -> list[bytes]:
        """Make the session of our initiation current; the frames that confirm it."""
        self.previous, self.current = self.current, pair
        self.handshake_s = now - self._round_started
        self._completed()
        return self._flush(pair) or [pair.seal(b"")]  # a keepalive confirms it

    def _no_common_cipher(self, peer: int) -> None:
        self.events.append(f"the peer allows the ciphers {', '.join(cipher_names(peer)) or '?'}, "
                           f"this side {', '.join(cipher_names(self._offer))}: give both sides "
                           "one --cipher they share (or auto)")

    def _completed(self) -> None:
        """A session became current: ours answered, or the one we answered confirmed by the
        initiator's first frame (an answered initiation alone may be a replay: not counted)."""
        self.handshakes += 1
        self.last_handshake = self._wall_clock()
