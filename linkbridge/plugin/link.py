"""The base class every link adapter plugin derives from."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from linkbridge.datapath.counters import Counters
from linkbridge.plugin.options import Option


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


class LinkWrapper(Link):
    """A link that sits in front of another link (`--via`), e.g. an impairment simulator."""

    def __init__(self, target: str, options: Mapping[str, Any], inner: Link) -> None:
        super().__init__(target, options)
        self.inner = inner
        self.name = f"{self.scheme}+{inner.name}"

    @property
    def mtu(self) -> int | None:
        return self.inner.mtu
