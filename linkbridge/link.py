"""The base class every link adapter plugin derives from."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from linkbridge.counters import Counters
from linkbridge.errors import ConfigError
from linkbridge.options import Option
from linkbridge.url import LinkUrl


@dataclass(frozen=True)
class LabSides:
    """The two lab hosts a link must join: their network namespaces and underlay addresses."""

    a_netns: str
    b_netns: str
    a_address: str
    b_address: str


@dataclass(frozen=True)
class LabDirection:
    """What a link is configured to do to one lab direction, for the lab report to compare
    with what it measures: loss fraction, mean added delay (s), rate limit (bit/s)."""

    loss: float = 0.0
    delay: float = 0.0
    rate: float | None = None
    overhead: int = 0

    def latency(self, size: int) -> float:
        """Mean one-way time a `size`-byte packet spends in the link: delay + serialisation."""
        serialise = max(0, size + self.overhead) * 8 / self.rate if self.rate else 0.0
        return self.delay + serialise


class Link(ABC):
    """A link carries whole packets to the peer and hands back what the peer sent.

    Subclasses set `scheme` (the URL scheme), `summary`, `target_help` and `options`;
    the registry validates a URL's options before the constructor sees them.
    Life cycle: construct -> open() -> send()/receive() from two threads -> close().
    """

    scheme: ClassVar[str]
    summary: ClassVar[str] = ""
    target_help: ClassVar[str] = ""
    options: ClassVar[tuple[Option, ...]] = ()

    def __init__(self, target: str, options: Mapping[str, Any]) -> None:
        self.target = target
        self.config = dict(options)
        self.counters = Counters()
        self.name = f"{self.scheme}:{target}"

    @property
    def mtu(self) -> int | None:
        """Largest packet the link carries whole, or None when it sets no limit of its own."""
        return None

    @abstractmethod
    def open(self) -> None:
        """Acquire the link's resources; raise LinkError with one clear line on failure."""

    @abstractmethod
    def send(self, packet: bytes) -> None:
        """Carry one packet to the peer; count (never raise) transient failures."""

    @abstractmethod
    def receive(self, timeout: float) -> list[bytes]:
        """Return the packets that arrived, waiting at most `timeout` seconds for the first."""

    @abstractmethod
    def close(self) -> None:
        """Release everything; safe to call twice."""

    @classmethod
    @contextlib.contextmanager
    def lab_pair(cls, url: LinkUrl, sides: LabSides) -> Iterator[tuple[LinkUrl, LinkUrl]]:
        """Yield the URLs side A and side B of `linkbridge lab` use to reach each other.

        Links that can join two lab hosts override this (and may set up helpers such as a
        pty pair, torn down on exit).
        """
        raise ConfigError(f"link {cls.scheme!r} cannot be used by the lab")
        yield  # pragma: no cover

    @classmethod
    def lab_configured(cls, url: LinkUrl) -> tuple[LabDirection, LabDirection] | None:
        """The configured A -> B and B -> A behaviour the lab report shows beside its
        measurements; None (the default) for links that configure none."""
        return None


class LinkWrapper(Link):
    """A link that sits in front of another link (`--via`), e.g. an impairment simulator."""

    def __init__(self, target: str, options: Mapping[str, Any], inner: Link) -> None:
        super().__init__(target, options)
        self.inner = inner
        self.name = f"{self.scheme}+{inner.name}"

    @property
    def mtu(self) -> int | None:
        return self.inner.mtu
