"""StreamLink over real kernel streams (socketpairs, pipes): what it does when the peer hangs
up, stalls or sends garbage, that it reconnects by itself, and that close() wakes a blocked send.
(Its reconnect logic step by step, on a fake clock: tests/unit/test_stream_reconnect.py.)"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from linkbridge.plugin import (
    SLIP_FRAMING,
    LinkError,
    Pollable,
    Stream,
    StreamLink,
    drops,
)
from linkbridge.plugin.codecs import length_prefix


class PairLink(StreamLink):
    """One end of a socketpair; the test holds the other end as `far`. A lost stream ends it."""

    scheme = "pair"
    write_timeout = 0.2
    reconnects = False

    def open_stream(self) -> Stream:
        mine, self.far = socket.socketpair()
        self.fd = mine.detach()
        return Stream(self.fd)


@pytest.fixture
def link() -> Iterator[PairLink]:
    link = PairLink("test", {})
    link.open()
    yield link
    link.close()
    link.far.close()


def test_packets_both_ways_and_pollable(link: PairLink) -> None:
    link.far.sendall(length_prefix.encode(b"one") + length_prefix.encode(b"two"))
    assert not isinstance(link, Pollable)  # its descriptor changes when it reconnects
    assert link.receive(1.0) == [b"one", b"two"]
    link.send(b"three")
    assert length_prefix.LengthDecoder().feed(link.far.recv(100)) == [b"three"]
    assert (link.counters.rx_packets, link.counters.tx_packets) == (2, 1)


def test_a_peer_that_hangs_up_ends_the_link_with_one_line(link: PairLink) -> None:
    link.far.close()
    assert link.receive(1.0) == []
    link.send(b"late")
    assert link.counters.drops[drops.NOT_CONNECTED] == 1
    with pytest.raises(LinkError, match=r"^pair:test: the peer closed the stream$"):
        link.receive(0.0)


def test_a_stream_out_of_step_is_counted_and_ends(link: PairLink) -> None:
    link.far.sendall(b"\x00\x00garbage")
    assert link.receive(1.0) == []
    assert link.counters.drops[drops.MALFORMED_FRAME] == 1
    with pytest.raises(LinkError, match="out of step"):
        link.receive(0.0)


def test_a_stalled_peer_slows_send_then_counts_write_timeout(link: PairLink) -> None:
    started = time.monotonic()
    while link.counters.drops[drops.WRITE_TIMEOUT] == 0:
        assert time.monotonic() - started < 10, "send never gave up on a stalled peer"
        link.send(bytes(1400))
    assert link.counters.tx_packets > 10  # the socket buffers took some first
    assert time.monotonic() - started >= PairLink.write_timeout


class PatientPairLink(PairLink):
    write_timeout = 30.0


def test_close_wakes_a_send_waiting_for_room() -> None:
    link = PatientPairLink("test", {})
    link.open()
    try:
        while True:  # fill the socket buffers without waiting
            try:
                os.write(link.fd, bytes(65536))
            except BlockingIOError:
                break
        sender = threading.Thread(target=link.send, args=(bytes(1400),))
        sender.start()
        time.sleep(0.2)
        started = time.monotonic()
        link.close()
        sender.join(5)
        assert not sender.is_alive()
        assert time.monotonic() - started < 1.0
        assert link.counters.drops[drops.NOT_CONNECTED] == 1
    finally:
        link.close()
        link.far.close()


class Reconnecting(PairLink):
    """Opens a new socketpair after a loss, and says hello on each."""

    reconnects = True
    opens = 0

    def open_stream(self) -> Stream:
        self.opens += 1
        return super().open_stream()

    def on_open(self) -> None:
        self.write(length_prefix.encode(b"hello"))


def test_a_lost_stream_is_reopened_with_backoff_and_on_open_runs_again() -> None:
    link = Reconnecting("test", {})
    link.open()
    try:
        first = link.far
        assert length_prefix.LengthDecoder().feed(first.recv(100)) == [b"hello"]
        first.close()
        assert link.receive(1.0) == []  # EOF seen: lost
        link.send(b"meanwhile")
        assert link.counters.drops[drops.NOT_CONNECTED] == 1
        started = time.monotonic()
        while link.opens < 2:
            assert time.monotonic() - started < 5, "never reopened"
            assert link.receive(0.5) == []
        assert time.monotonic() - started < 1.0  # the first retry comes after 0.05 s
        assert length_prefix.LengthDecoder().feed(link.far.recv(100)) == [b"hello"]
        link.far.sendall(length_prefix.encode(b"again"))
        assert link.receive(1.0) == [b"again"]
    finally:
        link.close()
        link.far.close()
        first.close()


def test_close_wakes_a_receive_waiting_for_the_backoff() -> None:
    link = Reconnecting("test", {})
    link.first_retry = link.max_retry = 30.0
    link.open()
    link.far.close()
    assert link.receive(1.0) == []  # lost; the next try is 30 s away
    waiter = threading.Thread(target=link.receive, args=(20.0,))
    waiter.start()
    time.sleep(0.2)
    started = time.monotonic()
    link.close()
    waiter.join(5)
    assert not waiter.is_alive()
    assert time.monotonic() - started < 1.0


class PipeSlipLink(StreamLink):
    scheme = "pipeslip"
    framing = SLIP_FRAMING

    def open_stream(self) -> Stream:
        reader, writer = os.pipe()
        return Stream(reader, writer)  # a loop: what it sends, it receives


def test_slip_framing_over_a_pipe_and_the_mtu_option() -> None:
    link = PipeSlipLink("loop", {"mtu": 100})
    link.open()
    try:
        link.send(bytes([0xC0, 0xDB]) * 10)
        link.send(bytes(101))
        assert link.receive(1.0) == [bytes([0xC0, 0xDB]) * 10]
        assert link.counters.drops[drops.MTU] == 1
        assert link.mtu == 100
    finally:
        link.close()
    with pytest.raises(LinkError, match="closed"):
        link.receive(0.0)
