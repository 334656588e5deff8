"""A half-duplex station's carrier: frames to and from the simulated medium over UDP."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from linkbridge.plugin import (
    Counters,
    DatagramEndpoint,
    LinkError,
    drops,
    format_address,
)
from linkbridge_sim.channel import Readiness
from linkbridge_sim.medium_protocol import (
    ERROR,
    FRAME,
    JOIN,
    JOINED,
    LOST,
    READY,
    decode_json,
    encode,
)
from linkbridge_sim.radio import RadioSettings

log = logging.getLogger("linkbridge")
JOIN_TIMEOUT = 5.0
JOIN_RETRY = 0.25
SILENT_MEDIUM = 30.0  # s without a datagram from the medium: its last report is stale


class MediumStation:
    """Joins the medium at `medium` with this side's radio, then sends and receives frames;
    with a `station` name its frames are addressed ones (medium_protocol.py). From the
    medium's readiness reports it knows when its radio is ready for another frame (ready())."""

    def __init__(self, name: str, bind: tuple[str, int], medium: tuple[str, int],
                 radio: RadioSettings, station: str | None = None) -> None:
        self.name = name
        self.bind = bind
        self.medium = medium
        self.radio = radio
        self.endpoint: DatagramEndpoint | None = None
        join: dict[str, object] = {"name": station or name, "radio": radio.to_record(),
                                   "ready": True}
        if station is not None:
            join["addressed"] = True
        self._join = encode(JOIN, join)
        self._errors = 0
        self._sent = 0  # frames sent to the medium
        self._report: Readiness | None = None  # the medium's last
        self._heard = 0.0  # when the last datagram from the medium came
        self._listeners: list[Callable[[], None]] = []
        self._early: list[bytes] = []  # what came with JOINED, for the first receive()

    def open(self) -> Counters:
        """Bind, join the medium (waiting for its answer) and return the carrier's counters."""
        endpoint = DatagramEndpoint(self.name, self.bind, self.medium)
        deadline = time.monotonic() + JOIN_TIMEOUT
        try:
            while time.monotonic() < deadline:
                endpoint.send(self._join)
                datagrams = endpoint.receive(JOIN_RETRY)
                for index, datagram in enumerate(datagrams):
                    if datagram[:1] == JOINED:
                        self.endpoint = endpoint
                        # (a readiness report or a frame read in the same batch: handled by
                        # the first receive(), after the caller's on_ready())
                        self._early = datagrams[index + 1:]
                        log.info("%s: joined the medium at %s: %s", self.name,
                                 format_address(self.medium), self.radio.describe())
                        return endpoint.counters
                    if datagram[:1] == ERROR:
                        raise LinkError(f"{self.name}: the medium refused to join: "
                                        f"{datagram[1:].decode(errors='replace')}")
        except BaseException:
            endpoint.close()
            raise
        endpoint.close()
        raise LinkError(f"{self.name}: no medium answers at {format_address(self.medium)} "
                        "(start one: python -m linkbridge_sim.medium --listen HOST:PORT)")

    def send(self, frame: bytes) -> None:
        self._send(FRAME, frame)

    def send_lost(self, frame: bytes) -> None:
        """Put `frame` on the air as one the loss model lost: it takes its airtime, and
        nobody receives it."""
        self._send(LOST, frame)

    def _send(self, kind: bytes, frame: bytes) -> None:
        if self.endpoint is None:
            raise LinkError(f"{self.name}: used before open()")
        self._sent += 1
        self.endpoint.send(kind + frame)

    def ready(self) -> bool:
        """Whether a frame sent now goes out soon, by the medium's last report
        (Readiness.ready()); True before the first (a medium that sends none) and after
        SILENT_MEDIUM seconds without a word from the medium (gone or restarted: a frame sent
        to it then brings its refusal, and the station joins again)."""
        report = self._report
        return (report is None or report.ready(self._sent)
                or time.monotonic() - self._heard > SILENT_MEDIUM)

    def on_ready(self, listener: Callable[[], None]) -> None:
        """Call `listener()` on the receiving thread whenever the medium reports a change."""
        self._listeners.append(listener)

    def _readiness(self, datagram: bytes) -> None:
        try:
            body = decode_json(datagram)
            self._report = Readiness(int(body["offered"]), int(body["held"]),
                                     body["busy"] is True)
        except (ValueError, TypeError, KeyError):
            self._malformed()
            return
        for listener in self._listeners:
            listener()

    def _malformed(self) -> None:
        if self.endpoint is not None:
            self.endpoint.counters.drop(drops.MALFORMED_FRAME)

    def receive(self, timeout: float) -> list[bytes]:
        """The frames received within `timeout` seconds; the medium's other datagrams
        (readiness reports among them) are handled on the way, without returning early."""
        deadline = time.monotonic() + timeout
        while not (frames := self._receive(timeout)):
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                break
        return frames

    def _receive(self, timeout: float) -> list[bytes]:
        if self.endpoint is None:
            raise LinkError(f"{self.name}: used before open()")
        frames = []
        datagrams, self._early = self._early or self.endpoint.receive(timeout), []
        for datagram in datagrams:
            self._heard = time.monotonic()
            if datagram[:1] == FRAME:
                frames.append(datagram[1:])
            elif datagram[:1] == READY:
                self._readiness(datagram)
            elif datagram[:1] == ERROR:  # e.g. a restarted medium: join again
                self.endpoint.send(self._join)
                self._errors += 1
                if self._errors <= 10:
                    log.warning("%s: the medium says: %s", self.name,
                                datagram[1:].decode(errors="replace"))
            elif datagram[:1] != JOINED:
                self._malformed()
        return frames

    def close(self) -> None:
        if self.endpoint is not None:
            self.endpoint.close()
            self.endpoint = None
