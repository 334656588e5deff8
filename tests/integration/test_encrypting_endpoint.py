"""The encrypt layer's glue (datapath/encrypting.py) with its threads: two layers over a pair of
in-memory endpoints, both directions sealing and opening at once while sessions rekey, the
timer thread retrying handshakes, Pollable only over a Pollable link."""

from __future__ import annotations

import contextlib
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from linkbridge.datapath.encrypting import EncryptingEndpoint, open_layer
from linkbridge.datapath.endpoint import Pollable
from linkbridge.testing import PollableMemoryEndpoint, memory_pair
from linkbridge.wire import drops
from linkbridge.wire.noise import public_bytes
from linkbridge.wire.secure import AES_256_GCM, CHACHA20_POLY1305, StaticKeys, Timers
from linkbridge.wire.stack import Encrypt

BOTH = frozenset({AES_256_GCM, CHACHA20_POLY1305})


def encryptions(timers: Timers) -> tuple[Encrypt, Encrypt]:
    keys = [X25519PrivateKey.generate() for _ in range(2)]
    return (Encrypt(StaticKeys(keys[0], public_bytes(keys[1]), ciphers=BOTH), timers),
            Encrypt(StaticKeys(keys[1], public_bytes(keys[0]), ciphers=BOTH), timers))


@contextlib.contextmanager
def layers(timers: Timers) -> Iterator[tuple[EncryptingEndpoint, EncryptingEndpoint]]:
    """Two encrypt layers over connected memory endpoints, timers stopped on exit."""
    below_a, below_b = memory_pair()
    first, second = encryptions(timers)
    with contextlib.ExitStack() as stack:
        yield open_layer(below_a, first, stack), open_layer(below_b, second, stack)
        below_a.close()
        below_b.close()


def numbered(sender: int, n: int) -> bytes:
    """A packet that says who sent it and its number, 200 bytes long."""
    return struct.pack(">BI", sender, n) + bytes(195)


def test_both_directions_at_once_through_rekeys_lose_and_repeat_nothing() -> None:
    """Each side sends batches from one thread while another thread receives, and each sender
    renews its session twice on the way (every 2000 packets, paced so that the handshakes stay
    within the rate limit of 5 at once and 1 a second): every packet arrives once, in order,
    and no frame is refused (a counter sealed twice would be a `replay` drop, a frame opened
    with the wrong key an `auth` drop)."""
    timers = Timers(retry=0.05, rekey_packets=2000)
    count, batch = 5000, 50
    with layers(timers) as (a, b):
        deadline = time.monotonic() + 5
        while a.channel.status(time.monotonic())["state"] != "established":
            assert time.monotonic() < deadline, "no session"
            b.receive(0.01)
            a.receive(0.01)
        received: dict[int, list[int]] = {0: [], 1: []}
        done = threading.Event()

        def send(layer: EncryptingEndpoint, me: int) -> None:
            for start in range(0, count, batch):
                layer.send_many([numbered(me, n) for n in range(start, start + batch)])
                time.sleep(0.02)

        def receive(layer: EncryptingEndpoint, peer: int) -> None:
            while not done.is_set():
                for packet in layer.receive(0.01):
                    sender, n = struct.unpack_from(">BI", packet)
                    assert sender == peer
                    received[peer].append(n)

        threads = [threading.Thread(target=send, args=(a, 0)),
                   threading.Thread(target=send, args=(b, 1)),
                   threading.Thread(target=receive, args=(b, 0)),
                   threading.Thread(target=receive, args=(a, 1))]
        for thread in threads:
            thread.start()
        for thread in threads[:2]:
            thread.join()
        time.sleep(0.3)  # the last frames arrive
        done.set()
        for thread in threads[2:]:
            thread.join()
        handshakes = a.channel.handshakes + b.channel.handshakes
    for layer, peer in ((a, 1), (b, 0)):
        lost = layer.counters.drops
        assert not {drops.REPLAY, drops.AUTH, drops.UNKNOWN_KEY} & set(lost), lost
        numbers = received[peer]
        assert numbers == sorted(set(numbers))  # once each, in order
    queued_out = Counter({side: layer.counters.drops.get(drops.NO_SESSION, 0)
                          for side, layer in enumerate((a, b))})
    assert len(received[0]) + queued_out[0] == count
    assert len(received[1]) + queued_out[1] == count
    # each handshake counts on both sides: one at the start (the two sides' initiations cross,
    # one gives way), then a renewal at least every 2000 packets (a session renewed by one side
    # restarts both directions' counts)
    assert handshakes >= 2 * (1 + 2)


def test_retries_come_from_the_timer_thread_without_traffic() -> None:
    """Both first initiations are lost; with no receive() and no packet, the timer threads
    resend them, and the session comes up from those."""
    timers = Timers(retry=0.2)  # one resend each before the sides read (handshakes: 5 at once)
    below_a, below_b = memory_pair()
    first, second = encryptions(timers)
    with contextlib.ExitStack() as stack:
        a = open_layer(below_a, first, stack)
        b = open_layer(below_b, second, stack)
        deadline = time.monotonic() + 5  # the handshake threads send the first initiations
        while not (below_a.inbox and below_b.inbox):
            assert time.monotonic() < deadline, "no first initiation"
            time.sleep(0.001)
        with below_a._lock, below_b._lock:  # both first initiations: lost
            below_a.inbox.clear()
            below_b.inbox.clear()
        time.sleep(0.3)
        assert len(below_a.inbox) == len(below_b.inbox) == 1  # resent by the timers alone
        deadline = time.monotonic() + 5
        while a.channel.status(time.monotonic())["state"] != "established":
            assert time.monotonic() < deadline, "no session"
            b.receive(0.02)
            a.receive(0.02)
        assert a.channel.handshakes + b.channel.handshakes >= 1
        assert a._scheduler is not None  # the layer's own: no scheduler was shared
        timer = a._scheduler._thread
    assert not timer.is_alive()  # stopped with the stack


def test_pollable_only_over_a_pollable_link() -> None:
    first, _second = encryptions(Timers())
    with contextlib.ExitStack() as stack:
        plain = open_layer(memory_pair()[0], first, stack)
        below = PollableMemoryEndpoint("p")
        stack.callback(below.close)
        polled = open_layer(below, first, stack)
        assert not isinstance(plain, Pollable)
        assert isinstance(polled, Pollable) and polled.fileno() == below.fileno()
