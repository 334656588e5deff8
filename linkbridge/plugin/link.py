"""The base class every link adapter plugin derives from, the one for `--via` wrappers, and
the mixin of a link whose decoder reports loss."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from linkbridge.datapath.counters import Counters
from linkbridge.datapath.endpoint import LossReporter
from linkbridge.framing.events import Lost
from linkbridge.plugin.options import Option
from linkbridge.plugin.tunnel_info import TunnelInfo


class Link(ABC):
    """A link carries whole packets to the peer and hands back what the peer sent.

    Subclasses set `scheme` (the URL scheme), `summary`, `target_help` and `options`;
    the registry validates a URL's options before the constructor sees them. `drop_reasons`
    declares the drop reasons the link counts beyond the core's (`drops.REASONS`), each with a
    one-line description (`linkbridge links` and `status` show them; the conformance suite
    fails a link that counts a reason declared nowhere).
    Life cycle: construct -> attach_tunnel() (when a TUN device stands above) -> open() ->
    send()/receive() from two threads -> close().
    """

    scheme: ClassVar[str]
    summary: ClassVar[str] = ""
    target_help: ClassVar[str] = ""
    options: ClassVar[tuple[Option, ...]] = ()
    drop_reasons: ClassVar[Mapping[str, str]] = {}

    def __init__(self, target: str, options: Mapping[str, Any]) -> None:
        self.target = target
        self.config = dict(options)
        self.counters = Counters()
        self.name = f"{self.scheme}:{target}"

    @property
    def mtu(self) -> int | None:
        """Largest packet the link carries whole, or None when it sets no limit of its own."""
        return None

    @property
    def foreign_peer(self) -> str | None:
        """What the peer is when it need not be linkbridge (e.g. "tncattach (mode=tun)"): such
        a peer cannot read linkbridge's own frames, so the tunnel refuses to fragment for it
        unless told the peer is linkbridge (`--fragment always`). None: the peer is linkbridge."""
        return None

    def attach_tunnel(self, tunnel: TunnelInfo) -> None:  # noqa: B027 - optional, not abstract
        """Called before open() with the tunnel the link serves (its device and addresses), for
        a link whose frames name this host (kiss: mode=ethernet derives its MAC address from
        it and announces the addresses); nothing by default."""

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

    @property
    def foreign_peer(self) -> str | None:
        return self.inner.foreign_peer

    def attach_tunnel(self, tunnel: TunnelInfo) -> None:
        self.inner.attach_tunnel(tunnel)

    def on_loss(self, listener: Callable[[str], None]) -> None:
        """Pass on the wrapped link's loss reports (LossReporter), when it makes any. A wrapper
        that holds back or reorders what it receives overrides this to pass nothing on."""
        if isinstance(self.inner, LossReporter):
            self.inner.on_loss(listener)


class ReportsLoss:
    """Mixin for a link whose decoder yields `Lost` marks (framing codecs do): makes the link
    a LossReporter, so the layer above hears of every frame lost on the way in (VJ header
    compression tosses until a frame names its connection). `receive()` passes what its
    decoder returns through `report_loss()` and delivers the frames it gets back."""

    __listeners: tuple[Callable[[str], None], ...] = ()

    def on_loss(self, listener: Callable[[str], None]) -> None:
        """Call `listener(reason)` on the receiving thread for each frame lost."""
        self.__listeners = (*self.__listeners, listener)

    def report_loss(self, decoded: Sequence[bytes | Lost]) -> list[bytes]:
        """The frames among `decoded`, after telling the listeners of each loss mark (its drop
        is counted by the decoder already)."""
        frames = [item for item in decoded if type(item) is bytes]
        if len(frames) != len(decoded):
            for item in decoded:
                if isinstance(item, Lost):
                    for listener in self.__listeners:
                        listener(item.reason)
        return frames
