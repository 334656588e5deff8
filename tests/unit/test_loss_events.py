"""Loss as an event between a link and the layer above: ReportsLoss tells its listeners of
each Lost mark its decoder yields, in stream order, and a `--via` wrapper passes that on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from linkbridge.datapath.endpoint import LossReporter
from linkbridge.plugin import Link, LinkWrapper, Lost, ReportsLoss
from linkbridge.plugin.codecs import slip


class Line(Link):
    """A link over an in-memory byte string (`line`), decoded as SLIP on receive."""

    scheme = "line"

    def __init__(self, target: str = "", options: Mapping[str, Any] | None = None) -> None:
        super().__init__(target, options or {})
        self.line = b""
        self.decoder = slip.SlipDecoder(100, errors=self.counters.drops)

    def open(self) -> None:
        pass

    def send(self, packet: bytes) -> None:
        self.line += slip.encode(packet)

    def receive(self, timeout: float) -> list[bytes]:
        data, self.line = self.line, b""
        return [item for item in self.decoder.feed(data) if isinstance(item, bytes)]

    def close(self) -> None:
        pass


class ReportingLine(ReportsLoss, Line):
    def receive(self, timeout: float) -> list[bytes]:
        data, self.line = self.line, b""
        return self.report_loss(self.decoder.feed(data))


class Wrapper(LinkWrapper):
    scheme = "wrap"

    def open(self) -> None:
        self.inner.open()

    def send(self, packet: bytes) -> None:
        self.inner.send(packet)

    def receive(self, timeout: float) -> list[bytes]:
        return self.inner.receive(timeout)

    def close(self) -> None:
        self.inner.close()


NOISY = slip.encode(b"one") + bytes([slip.ESC, 0x01, slip.END]) + slip.encode(b"two")


def test_each_loss_mark_reaches_every_listener_and_the_frames_come_back() -> None:
    link = ReportingLine()
    assert isinstance(link, LossReporter) and not isinstance(Line(), LossReporter)
    first: list[str] = []
    second: list[str] = []
    link.on_loss(first.append)
    link.on_loss(second.append)
    link.line = bytes([slip.END]) + NOISY + b"x" * 300 + bytes([slip.END])
    assert link.receive(0) == [b"one", b"two"]
    assert first == second == [slip.BAD_ESCAPE, slip.OVERSIZE]
    assert link.counters.drops == {slip.BAD_ESCAPE: 1, slip.OVERSIZE: 1}


def test_report_loss_keeps_the_order_of_frames_and_needs_no_listener() -> None:
    link = ReportingLine()
    assert link.report_loss([b"a", Lost("x"), b"b"]) == [b"a", b"b"]
    heard: list[str] = []
    link.on_loss(heard.append)
    assert link.report_loss([b"a", b"b"]) == [b"a", b"b"] and heard == []


def test_a_wrapper_passes_its_links_loss_reports_on() -> None:
    inner = ReportingLine()
    wrapper = Wrapper("", {}, inner)
    heard: list[str] = []
    assert isinstance(wrapper, LossReporter)
    wrapper.on_loss(heard.append)
    inner.line = bytes([slip.END]) + NOISY
    assert wrapper.receive(0) == [b"one", b"two"]
    assert heard == [slip.BAD_ESCAPE]
    plain = Line()
    quiet = Wrapper("", {}, plain)
    quiet.on_loss(heard.append)  # nothing below reports: nothing is heard, nothing breaks
    plain.line = bytes([slip.END]) + NOISY
    assert quiet.receive(0) == [b"one", b"two"] and heard == [slip.BAD_ESCAPE]
