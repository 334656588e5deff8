"""StreamLink's reconnecting, step by step: a fake opener (socketpairs, or a failure) and a fake
clock, no sleeps and no threads. Real streams and real waiting: tests/integration."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from linkbridge.plugin import LinkError, Stream, StreamLink, drops
from linkbridge.plugin.codecs import length_prefix


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Flaky(StreamLink):
    """Its opener fails while `failures` is positive, else opens a socketpair (`far`: the
    other end); it says `hello` on every open and records when it was asked to open."""

    scheme = "flaky"
    reconnects = True

    def __init__(self, target: str, options: dict[str, Any]) -> None:
        super().__init__(target, options)
        self.time = Clock()
        self.clock = self.time
        self.failures = 0
        self.attempts: list[float] = []
        self.opened = 0
        self.far: socket.socket | None = None

    def open_stream(self) -> Stream:
        self.attempts.append(self.clock())
        if self.failures:
            self.failures -= 1
            raise FileNotFoundError(2, "No such file or directory")
        mine, self.far = socket.socketpair()
        return Stream(mine.detach())

    def on_open(self) -> None:
        self.opened += 1
        self.write(length_prefix.encode(b"hello"))

    def far_packets(self) -> list[bytes]:
        assert self.far is not None
        return length_prefix.LengthDecoder().feed(self.far.recv(65536))

    def hang_up(self) -> None:
        assert self.far is not None
        self.far.close()
        assert self.receive(0) == []  # sees the EOF: lost


@pytest.fixture
def link() -> Iterator[Flaky]:
    link = Flaky("dev", {})
    link.open()
    yield link
    link.close()


def advance_until_opened(link: Flaky, step: float = 0.01, limit: float = 10.0) -> None:
    opened, start = link.opened, link.time.now
    while link.opened == opened:
        assert link.time.now - start < limit, "never reopened"
        link.time.now += step
        assert link.receive(0) == []


def test_a_lost_stream_logs_once_counts_sends_and_reopens_with_backoff(
        link: Flaky, caplog: pytest.LogCaptureFixture) -> None:
    assert link.far_packets() == [b"hello"]
    link.failures = 4
    with caplog.at_level(logging.INFO, logger="linkbridge.stream"):
        link.hang_up()
        for _ in range(3):
            link.send(b"meanwhile")
        assert link.receive(0) == []  # the first retry is not due yet
        advance_until_opened(link)
    assert [record.getMessage() for record in caplog.records] == [
        "flaky:dev: stream lost (the peer closed the stream); the tunnel stays up, "
        "reopening dev with backoff",
        "flaky:dev: stream back after 1.6 s, traffic resumes"]
    assert link.counters.drops[drops.NOT_CONNECTED] == 3
    lost_at = 100.0
    gaps = [round(b - a, 2) for a, b in zip([lost_at, *link.attempts[1:]], link.attempts[1:],
                                                strict=False)]
    assert gaps == [0.05, 0.1, 0.2, 0.4, 0.8]  # the first attempt was the initial open
    assert link.opened == 2 and link.far_packets() == [b"hello"]  # on_open ran again
    link.send(b"after")
    assert link.far_packets() == [b"after"]
    assert link.far is not None
    link.far.sendall(length_prefix.encode(b"back"))
    assert link.receive(0) == [b"back"]


def test_the_backoff_stops_growing_at_max_retry_and_restarts_after_a_success(
        link: Flaky) -> None:
    link.failures = 8
    link.hang_up()
    advance_until_opened(link)
    gaps = [round(b - a, 2) for a, b in zip(link.attempts[1:], link.attempts[2:], strict=False)]
    assert gaps == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0]
    link.hang_up()
    lost_at, before = link.time.now, len(link.attempts)
    advance_until_opened(link)
    assert len(link.attempts) == before + 1
    assert link.attempts[-1] - lost_at == pytest.approx(0.05, abs=0.011)


def test_a_first_open_that_fails_is_one_line_unless_waiting_for_the_peer(
        caplog: pytest.LogCaptureFixture) -> None:
    link = Flaky("dev", {})
    link.failures = 1
    with pytest.raises(LinkError, match=r"^flaky:dev: cannot open dev: No such file or "
                                        r"directory$"):
        link.open()
    link.wait_for_peer = True
    link.failures = 2
    with caplog.at_level(logging.WARNING, logger="linkbridge.stream"):
        link.open()
    try:
        assert "cannot open dev yet (No such file or directory); waiting for it" in caplog.text
        link.send(b"early")
        assert link.counters.drops[drops.NOT_CONNECTED] == 1
        advance_until_opened(link)
        assert link.far_packets() == [b"hello"]
    finally:
        link.close()


class Holding(Flaky):
    hold = 2


def test_packets_sent_while_down_are_held_up_to_hold_and_sent_after_on_open() -> None:
    link = Holding("dev", {})
    link.wait_for_peer = True
    link.failures = 1
    link.open()
    try:
        for packet in (b"one", b"two", b"three"):
            link.send(packet)
        assert link.counters.drops[drops.NOT_CONNECTED] == 1  # "one" gave way
        advance_until_opened(link)
        assert link.far_packets() == [b"hello", b"two", b"three"]
        assert link.counters.tx_packets == 2
    finally:
        link.close()


class Ending(Flaky):
    reconnects = False


def test_without_reconnects_a_lost_stream_ends_the_link() -> None:
    link = Ending("dev", {})
    link.open()
    try:
        assert link.far_packets() == [b"hello"]
        link.hang_up()
        with pytest.raises(LinkError, match=r"^flaky:dev: the peer closed the stream$"):
            link.receive(0)
    finally:
        link.close()


class Colliding(Flaky):
    """A plugin whose own attributes have the names a base class might have used."""

    def __init__(self, target: str, options: dict[str, Any]) -> None:
        super().__init__(target, options)
        self._closed = self._lost = True
        self._reader = self._writer = self._wake = self._stream = self._state = "mine"
        self._decoder = self._backoff = self._lock = self._held = None

    def _release(self) -> None:  # method names of its own, too
        raise AssertionError("the base must not call a subclass's _release")

    def _lose(self, reason: str) -> None:
        raise AssertionError("the base must not call a subclass's _lose")

    def _start(self) -> None:
        raise AssertionError("the base must not call a subclass's _start")


def test_a_plugins_own_attributes_do_not_break_the_base() -> None:
    link = Colliding("dev", {})
    link.open()
    try:
        link.hang_up()
        advance_until_opened(link)
        link.send(b"still works")
        assert link.far_packets() == [b"hello", b"still works"]  # the new stream's
        assert link._closed is True and link._reader == "mine"
    finally:
        link.close()
