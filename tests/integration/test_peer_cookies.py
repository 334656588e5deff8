"""Cookie replies per peer on a multipoint hub (docs/security.md, "Handshakes under attack")
for real: an encrypted hub with peers b and c in namespaces on one switch, flooded from a
fourth namespace with fresh initiations (a valid mac1 for the hub's key, made with keys it
does not know: what anyone who knows its public key can send) under b's and c's addresses
and ports, 50 a second each. The hub starts first and the flood before b and c: every
initiation of theirs comes over the rate. Each gets a cookie reply at its address (the
attacker, elsewhere, never sees them), resends with the cookie's mac2 at once, and makes a
session: both ping the hub within a few seconds, where without cookies the first
initiation to pass would be a resend 30 s later (`--handshake-retry 30` on every side)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from linkbridge.lab.probes import ping
from linkbridge.lab.processes import LinkbridgeProcess
from linkbridge.lab.topology import Star, set_sysctl, star_hosts
from linkbridge.ops.status_data import PEER_SIDE, TunnelStatus
from linkbridge.wire.drops import HANDSHAKE_COOKIE, HANDSHAKE_PEER
from linkbridge.wire.keys import StaticKeys, decode_key
from linkbridge.wire.secure import SecureChannel, Timers
from tests.helpers.raw_sender import raw_sending
from tests.integration.test_encryption import spoofed_udp
from tests.integration.test_multipoint import statuses
from tests.integration.test_roaming import NAMES, PORT, args_of, make_keys, overlay

RETRY = ["--handshake-retry", "30"]
FLOOD_PER_SECOND = 50  # fresh initiations a second under each peer's address
FLOOD_FRAMES = 600  # made beforehand: 12 s of flood each, none sent twice
SETTLE = 0.5  # seconds of flood before b and c start (the hub's buckets empty by then)
SESSIONS_WITHIN = 8.0  # seconds from b's and c's start: far below the 30 s retry


def fresh_initiations(hub_public: bytes, count: int) -> list[bytes]:
    """`count` initiations to the hub, each from a new key of no peer's."""
    made = []
    for _ in range(count):
        channel = SecureChannel(StaticKeys(X25519PrivateKey.generate(), hub_public), Timers(),
                                lambda _reason: None, os.urandom,
                                time.time_ns)
        channel.start(0.0)
        made += channel.work(0.0)
    return made


@contextlib.contextmanager
def flooding(attacker: str, star: Star, frames: Sequence[bytes]) -> Iterator[list[int]]:
    """Send `frames` from namespace `attacker` to the hub, each under b's address and port,
    then the next under c's, FLOOD_PER_SECOND a second each, until the block ends; yields
    the count sent."""
    hub = (star.address(0), PORT)
    datagrams = [spoofed_udp(frame, (star.address(1 + n % 2), PORT), hub)
                 for n, frame in enumerate(frames)]

    def send(raw: socket.socket, done: threading.Event, sent: list[int]) -> None:
        pace = 1 / (2 * FLOOD_PER_SECOND)
        due = time.monotonic()
        for datagram in datagrams:
            if done.is_set():
                return
            with contextlib.suppress(OSError):
                raw.sendto(datagram, (hub[0], 0))
            sent[0] += 1
            due += pace
            done.wait(max(0.0, due - time.monotonic()))

    with raw_sending(attacker, send) as sent:
        yield sent


def peer_drops(hub: TunnelStatus, name: str) -> dict[str, int]:
    side = dict(hub.sides())[PEER_SIDE + name]
    return dict(next(layer.drops for layer in side.stack() if layer.encryption))


def test_both_peers_of_a_flooded_hub_get_sessions_by_their_cookies(
        run_dir: object, root: None, tmp_path: Path) -> None:
    keys = make_keys(tmp_path)
    frames = fresh_initiations(decode_key(keys[0][1], "the hub's public key"), FLOOD_FRAMES)
    with star_hosts(len(NAMES) + 1) as star:
        for host in star.hosts:
            set_sysctl(host, "net/ipv6/conf/default/disable_ipv6", "1")
        hub, b, c = (LinkbridgeProcess(star.hosts[index], args_of(star, index, keys) + RETRY,
                                       NAMES[index]) for index in range(len(NAMES)))
        with hub, flooding(star.hosts[3], star, frames) as sent:
            time.sleep(SETTLE)
            started = time.monotonic()
            with b, c:
                answered = {name: ping(star.hosts[index], overlay(0), count=1,
                                       timeout=SESSIONS_WITHIN).received
                            for index, name in ((1, "b"), (2, "c"))}
                took = time.monotonic() - started
                (status,) = statuses([hub])
            flooded = sent[0]
        print(f"sessions through the flood in {took:.1f} s, {flooded} initiations sent")
        assert answered == {"b": 1, "c": 1}, (answered, took)
        assert flooded < FLOOD_FRAMES  # the flood lasted the whole test
        for name in ("b", "c"):
            found = peer_drops(status, name)
            assert found.get(HANDSHAKE_COOKIE, 0) >= 10, (name, found)  # the flood's, theirs
            assert found.get(HANDSHAKE_PEER, 0) >= 1, (name, found)  # a stranger's, refused
            side = dict(status.sides())[PEER_SIDE + name]
            (session,) = [layer.encryption for layer in side.stack() if layer.encryption]
            assert session.state == "established", (name, session)
