"""The in-memory doubles of linkbridge.testing behave like the endpoints and links they stand
for."""

from __future__ import annotations

import select

import pytest

from linkbridge.datapath.endpoint import Pollable
from linkbridge.errors import ConfigError
from linkbridge.plugin.link import Link
from linkbridge.plugin.registry import LinkRegistry, get_plugin_manager
from linkbridge.testing import (
    MemoryEndpoint,
    MemoryLink,
    MemoryPlugin,
    PollableMemoryEndpoint,
    connect,
    memory_link_pair,
    memory_pair,
)


def readable(fd: int) -> bool:
    poll = select.poll()
    poll.register(fd, select.POLLIN)
    return bool(poll.poll(0))


def test_pair_carries_both_ways_and_counts() -> None:
    a, b = memory_pair()
    assert (a.name, b.name) == ("a", "b")
    a.send(b"one")
    a.send(b"two")
    b.send(b"back")
    assert b.receive(0) == [b"one", b"two"]
    assert a.receive(0) == [b"back"]
    assert a.sent == [b"one", b"two"]
    assert (a.counters.tx_packets, a.counters.tx_bytes) == (2, 6)
    assert (b.counters.rx_packets, b.counters.rx_bytes) == (2, 6)
    assert b.receive(0) == []


def test_alone_an_endpoint_keeps_what_it_sends_and_hands_out_what_it_is_fed() -> None:
    end = MemoryEndpoint()
    end.send(b"out")
    assert end.sent == [b"out"]
    assert end.receive(0) == []
    end.feed(b"in1", b"in2")
    assert end.inbox == [b"in1", b"in2"]
    assert end.receive(0) == [b"in1", b"in2"]
    assert end.inbox == []


def test_only_the_pollable_endpoint_declares_a_descriptor() -> None:
    assert not isinstance(MemoryEndpoint(), Pollable)
    assert isinstance(PollableMemoryEndpoint(), Pollable)


def test_pollable_descriptor_is_readable_exactly_while_packets_wait() -> None:
    a, b = connect(PollableMemoryEndpoint("a"), PollableMemoryEndpoint("b"))
    assert not readable(b.fileno())
    a.send(b"x")
    a.send(b"y")
    assert readable(b.fileno())
    assert b.receive(0) == [b"x", b"y"]
    assert not readable(b.fileno())
    assert b.receive(0) == []
    assert not readable(b.fileno())
    b.close()
    b.close()
    assert b.fileno() == -1
    a.send(b"after close")  # the peer is gone: nothing breaks
    a.close()


def test_a_link_alone_echoes_and_a_pair_carries() -> None:
    echo = MemoryLink("x")
    assert isinstance(echo, Link)
    assert echo.name == "memory:x"
    assert echo.mtu is None
    echo.open()
    assert echo.opened
    echo.send(b"ping")
    assert echo.receive(0) == [b"ping"]
    a, b = memory_link_pair()
    a.send(b"over")
    assert b.receive(0) == [b"over"]
    assert a.receive(0) == []
    for link in (echo, a, b):
        link.close()
        link.close()


def test_a_link_drops_what_is_over_its_mtu_and_counts_it() -> None:
    a, b = memory_link_pair({"mtu": 4})
    assert a.mtu == 4
    a.send(b"12345")
    a.send(b"1234")
    assert b.receive(0) == [b"1234"]
    assert a.counters.drops == {"mtu": 1}
    assert a.counters.tx_packets == 1


def test_plugin_registers_the_memory_scheme() -> None:
    manager = get_plugin_manager()
    manager.register(MemoryPlugin(), name="memory")
    registry = LinkRegistry(manager)
    assert registry.links["memory"].plugin == "memory"
    link = registry.create_link("memory:lab?mtu=100")
    assert isinstance(link, MemoryLink)
    assert (link.target, link.mtu) == ("lab", 100)
    with pytest.raises(ConfigError, match="'mtu'"):
        registry.create_link("memory:lab?mtu=0")
