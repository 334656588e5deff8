"""A conformance suite any link plugin can run against itself with pytest.

Subclass `LinkConformance` in a test module under a name pytest collects (`Test...`), set
`scheme`, and implement `pair()` to yield two connected link URLs:

    class TestTcpConformance(LinkConformance):
        scheme = "tcp"

        @contextlib.contextmanager
        def pair(self, options=""):
            port = free_tcp_port()
            yield (f"tcp:127.0.0.1:{port}?listen=1{options}", f"tcp:127.0.0.1:{port}{options}")

The suite checks what the data path relies on: the plugin registers through the entry-point
group, packets arrive whole and unchanged in both directions, counters add up, `mtu` is
reported and enforced as a counted drop, `receive` honours its timeout, `close` is idempotent,
failures surface as LinkError (never a bare OSError) and bad options as ConfigError.
"""

from __future__ import annotations

import contextlib
import random
import socket
import time
from collections.abc import Iterator
from typing import ClassVar

import pytest

from linkbridge.errors import ConfigError, LinkbridgeError, LinkError
from linkbridge.plugin.link import Link
from linkbridge.plugin.options import Option
from linkbridge.plugin.registry import LinkRegistry, get_plugin_manager
from linkbridge.wire.drops import MTU

DELIVERY_TIMEOUT = 10.0  # generous: the CI machine is shared and busy
SIZES = (1, 20, 64, 576, 1280, 1400)


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port on 127.0.0.1 that is free right now (for UDP by default, or SOCK_STREAM)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def receive_exactly(link: Link, count: int, timeout: float = DELIVERY_TIMEOUT) -> list[bytes]:
    """Receive until `count` packets arrived or `timeout` passed; return what arrived."""
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got += link.receive(0.2)
    return got


def payloads(seed: int, sizes: tuple[int, ...]) -> list[bytes]:
    """Seeded random payloads of the given sizes (not valid IP: links must not care)."""
    rng = random.Random(seed)
    return [rng.randbytes(size) for size in sizes]


class LinkConformance:
    """The checks every link plugin should pass; subclass it as `Test<Name>Conformance`.

    Class attributes to set: `scheme` (required); `ordered` (False for links that may reorder);
    `bad_options` (option -> a value the link must refuse); `max_payload` (largest packet the
    integrity test sends, for links with a small frame size). Override `pair()` and, if the link
    can fail to open, `unopenable()`.
    """

    scheme: ClassVar[str]
    ordered: ClassVar[bool] = True
    bad_options: ClassVar[dict[str, str]] = {}
    max_payload: ClassVar[int] = 1400

    @contextlib.contextmanager
    def pair(self, options: str = "") -> Iterator[tuple[str, str]]:
        """Yield URLs of two links that reach each other; `options` is `&key=value...`."""
        raise NotImplementedError("a conformance subclass must implement pair()")
        yield  # pragma: no cover

    @contextlib.contextmanager
    def unopenable(self) -> Iterator[str | None]:
        """Yield a URL whose open() must fail (e.g. its port is taken), or None to skip."""
        yield None

    # --- helpers ---------------------------------------------------------------------------

    def registry(self) -> LinkRegistry:
        return LinkRegistry(get_plugin_manager())

    @contextlib.contextmanager
    def opened(self, options: str = "") -> Iterator[tuple[Link, Link]]:
        registry = self.registry()
        with self.pair(options) as (url_a, url_b):
            a, b = registry.create_link(url_a), registry.create_link(url_b)
            try:
                a.open()
                b.open()
                yield a, b
            finally:
                a.close()
                b.close()

    def _sizes(self) -> tuple[int, ...]:
        return tuple(min(size, self.max_payload) for size in SIZES)

    def _carry(self, sender: Link, receiver: Link, packets: list[bytes]) -> None:
        for packet in packets:
            sender.send(packet)
        got = receive_exactly(receiver, len(packets))
        if self.ordered:
            assert got == packets, f"{self.scheme}: sent {len(packets)}, got {len(got)}"
        else:
            assert sorted(got) == sorted(packets)

    # --- the checks ------------------------------------------------------------------------

    def test_registered_through_entry_points(self) -> None:
        cls = self.registry().link_class(self.scheme)
        assert issubclass(cls, Link)
        assert cls.scheme == self.scheme
        assert cls.summary, "a link needs a one-line summary for `linkbridge links`"
        assert all(isinstance(option, Option) for option in cls.options)
        assert len({option.name for option in cls.options}) == len(cls.options)

    def test_packets_arrive_whole_both_ways(self) -> None:
        with self.opened() as (a, b):
            self._carry(a, b, payloads(1, self._sizes()))
            self._carry(b, a, payloads(2, self._sizes()))

    def test_counters_add_up(self) -> None:
        packets = payloads(3, self._sizes())
        with self.opened() as (a, b):
            self._carry(a, b, packets)
            assert a.counters.tx_packets == len(packets)
            assert a.counters.tx_bytes == sum(map(len, packets))
            assert b.counters.rx_packets == len(packets)
            assert b.counters.rx_bytes == sum(map(len, packets))

    def test_mtu_is_reported_and_enforced(self) -> None:
        cls = self.registry().link_class(self.scheme)
        with self.opened() as (a, _):
            assert a.mtu is None or 1 <= a.mtu <= 65535
        if "mtu" not in {option.name for option in cls.options}:
            return
        limit = min(200, self.max_payload - 1)
        with self.opened(f"&mtu={limit}") as (a, b):
            assert a.mtu == limit
            a.send(bytes(limit + 1))  # too big: a counted drop, not an exception
            assert a.counters.drops[MTU] == 1
            self._carry(a, b, [bytes(range(256))[:limit]])
            assert a.counters.tx_packets == 1

    def test_receive_honours_its_timeout(self) -> None:
        with self.opened() as (a, _):
            started = time.monotonic()
            assert a.receive(0.2) == []
            assert time.monotonic() - started < 0.2 + 2.0

    def test_close_is_idempotent_and_final(self) -> None:
        registry = self.registry()
        with self.pair() as (url_a, _):
            never_opened = registry.create_link(url_a)
            never_opened.close()
            never_opened.close()
        with self.opened() as (a, _):
            a.close()
            a.close()
            for use in (lambda: a.send(b"late"), lambda: a.receive(0.0)):
                with contextlib.suppress(LinkbridgeError):  # any other exception fails
                    use()

    def test_open_failure_is_a_link_error(self) -> None:
        with self.unopenable() as url:
            if url is None:
                pytest.skip(f"{self.scheme}: no unopenable URL given")
            link = self.registry().create_link(url)
            with pytest.raises(LinkError) as info:
                link.open()
            link.close()
            assert "\n" not in str(info.value), "errors are one line"

    def test_unknown_option_names_the_valid_ones(self) -> None:
        with self.pair() as (url_a, _), pytest.raises(ConfigError, match="valid options"):
            self.registry().create_link(f"{url_a}&no_such_option_x=1"
                                        if "?" in url_a else f"{url_a}?no_such_option_x=1")

    def test_bad_option_values_are_config_errors(self) -> None:
        with self.pair() as (url_a, _):
            base = url_a.partition("?")[0]
            for key, value in self.bad_options.items():
                with pytest.raises(ConfigError, match=repr(key)):
                    self.registry().create_link(f"{base}?{key}={value}")
