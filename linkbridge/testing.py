"""In-memory test doubles: endpoints and a `memory:` link that carry packets without sockets.

`MemoryEndpoint` is an Endpoint whose packets wait in `inbox` (filled by `feed()` or by its
peer's send()) and whose sent packets are kept in `sent`; `PollableMemoryEndpoint` adds a
descriptor for the data path's poll loop; `MemoryLink` is a Link (scheme `memory`, registered by
`MemoryPlugin`) that echoes what it is sent until `connect()` or `memory_link_pair()` gives it
a peer. Never imports pytest.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any, TypeVar

from linkbridge.datapath.counters import Counters
from linkbridge.plugin.hookspecs import hookimpl
from linkbridge.plugin.link import Link
from linkbridge.plugin.options import Option, integer
from linkbridge.wire import drops


class MemoryEndpoint:
    """An Endpoint in memory. send() counts the packet, keeps it in `sent` and, when `peer` is
    set, feeds it to the peer; receive() waits up to `timeout` for `inbox` to fill (or for
    close()) and hands out everything in it."""

    def __init__(self, name: str = "memory", counters: Counters | None = None) -> None:
        self.name = name
        self.counters = Counters() if counters is None else counters
        self.inbox: list[bytes] = []
        self.sent: list[bytes] = []
        self.peer: MemoryEndpoint | None = None
        self.closed = False
        self._lock = threading.Condition()

    def feed(self, *packets: bytes) -> None:
        """Queue `packets` for receive(), as if they had arrived."""
        with self._lock:
            self.inbox.extend(packets)
            self._inbox_changed()

    def send(self, packet: bytes) -> None:
        self.counters.sent(len(packet))
        self.sent.append(packet)
        if self.peer is not None:
            self.peer.feed(packet)

    def receive(self, timeout: float) -> list[bytes]:
        with self._lock:
            self._lock.wait_for(lambda: bool(self.inbox) or self.closed, timeout)
            packets, self.inbox = self.inbox, []
            self._inbox_changed()
        for packet in packets:
            self.counters.received(len(packet))
        return packets

    def close(self) -> None:
        """Wake a waiting receive(); safe to call twice."""
        with self._lock:
            self.closed = True
            self._lock.notify_all()

    def _inbox_changed(self) -> None:
        """Called with the lock held after `inbox` gained or lost packets."""
        self._lock.notify_all()


class PollableMemoryEndpoint(MemoryEndpoint):
    """A MemoryEndpoint that is Pollable: `fileno()` is an eventfd, readable while `inbox` holds
    packets (test code that edits `inbox` directly should call feed() instead)."""

    def __init__(self, name: str = "memory", counters: Counters | None = None) -> None:
        super().__init__(name, counters)
        self._ready = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._readable = False

    def fileno(self) -> int:
        return self._ready

    def close(self) -> None:
        with self._lock:
            if self._ready >= 0:
                os.close(self._ready)
                self._ready = -1
        super().close()

    def _inbox_changed(self) -> None:
        super()._inbox_changed()
        if self._ready < 0 or bool(self.inbox) == self._readable:
            return
        if self.inbox:
            os.eventfd_write(self._ready, 1)
        else:
            os.eventfd_read(self._ready)
        self._readable = bool(self.inbox)


class MemoryLink(MemoryEndpoint, Link):
    """The `memory:` link: a MemoryEndpoint that is a Link. Alone it echoes every packet back
    to itself; connect() pairs it with another. A packet over its `mtu` option is a counted
    drop, as the link contract asks."""

    scheme = "memory"
    summary = "in-memory link for tests: echoes packets, or carries them to its paired end"
    target_help = "any name"
    options = (Option("mtu", integer(1, 65535), None, "largest packet carried"),)

    def __init__(self, target: str = "", options: Mapping[str, Any] | None = None) -> None:
        Link.__init__(self, target, options or {})
        MemoryEndpoint.__init__(self, self.name, self.counters)
        self.peer = self
        self.opened = False

    @property
    def mtu(self) -> int | None:
        value: int | None = self.config.get("mtu")
        return value

    def open(self) -> None:
        self.opened = True

    def send(self, packet: bytes) -> None:
        if self.mtu is not None and len(packet) > self.mtu:
            self.counters.drop(drops.MTU)
            return
        super().send(packet)


class MemoryPlugin:
    """A plugin contributing `memory:`; register an instance with a plugin manager."""

    @hookimpl
    def linkbridge_register_links(self) -> list[type[Link]]:
        return [MemoryLink]


E = TypeVar("E", bound=MemoryEndpoint)


def connect(a: E, b: E) -> tuple[E, E]:
    """Make `a` and `b` each other's peer: what one sends, the other receives."""
    a.peer, b.peer = b, a
    return a, b


def memory_pair() -> tuple[MemoryEndpoint, MemoryEndpoint]:
    """Two connected endpoints named "a" and "b"."""
    return connect(MemoryEndpoint("a"), MemoryEndpoint("b"))


def memory_link_pair(options: Mapping[str, Any] | None = None) -> tuple[MemoryLink, MemoryLink]:
    """Two connected `memory:` links (targets "a" and "b") with the same `options`."""
    return connect(MemoryLink("a", options), MemoryLink("b", options))
