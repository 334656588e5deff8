"""The sim: station's join (plugins/linkbridge_sim/station.py) with the medium's datagrams
handed in one batch, as a loaded machine reads them: nothing that came with JOINED is lost.
Pure logic: the station's endpoint is a fake that returns scripted batches."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from linkbridge_sim import station as station_module
from linkbridge_sim.medium_protocol import FRAME, JOINED, READY, encode
from linkbridge_sim.radio import RadioSettings

from linkbridge.plugin import Counters


class ScriptedEndpoint:
    """Returns `batches` one per receive() (then nothing) and keeps what is sent."""

    batches: ClassVar[list[list[bytes]]] = []

    def __init__(self, name: str, *_: Any) -> None:
        self.counters = Counters(name)
        self.sent: list[bytes] = []

    def send(self, datagram: bytes) -> None:
        self.sent.append(datagram)

    def receive(self, timeout: float) -> list[bytes]:
        return ScriptedEndpoint.batches.pop(0) if ScriptedEndpoint.batches else []

    def close(self) -> None:
        pass


def test_a_report_and_a_frame_read_with_joined_reach_the_first_receive(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(station_module, "DatagramEndpoint", ScriptedEndpoint)
    ScriptedEndpoint.batches = [[encode(JOINED), encode(READY, {"offered": 2, "held": 0,
                                                                 "busy": True}),
                                 FRAME + b"early"]]
    station = station_module.MediumStation("a", ("127.0.0.1", 0), ("127.0.0.1", 9),
                                           RadioSettings(rate=9600.0))
    station.open()
    seen: list[bool] = []
    station.on_ready(lambda: seen.append(station.ready()))
    assert station.receive(0.0) == [b"early"]
    assert seen == [False]  # busy: the report said another station is on the air
    assert station.receive(0.0) == []
