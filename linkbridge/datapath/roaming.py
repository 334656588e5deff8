"""Roaming on a multipoint link (docs/multipoint.md, "Roaming"): a frame from a source no
station has moves a peer's station there when it authenticates under that peer's encryption
session, or is a fresh initiation from the peer's key, as WireGuard's peers roam; a frame that
does not authenticate moves nothing.

The link names such a frame's source STRANGER + source (a RoamingLink after let_roam()). The
frame carries no peer index, so `Roamer` asks each encrypting peer in turn (transport data
whose key id no session has costs a few comparisons, one that gets past it a decryption; an
initiation with a valid mac1 two Diffie-Hellman operations), at most ROAM_BURST frames at once
and ROAM_PER_SECOND after that, of them ROAM_INITIATIONS initiations a second, so that a flood
of frames from strangers costs the receiving thread little; a copy of another frame of the
same batch (a replay racing the original) is refused.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence

from linkbridge.datapath.endpoint import STRANGER, RoamingLink
from linkbridge.wire.drops import ROAM_RATE, ROAM_REFUSED
from linkbridge.wire.frames import HANDSHAKE_INITIATION, type_nibble
from linkbridge.wire.guard import TokenBucket

log = logging.getLogger("linkbridge")

ROAM_BURST = 16.0  # frames from strangers checked at once ...
ROAM_PER_SECOND = 100.0  # ... and per second after that; the rest are counted drops
ROAM_INITIATIONS = 2.0  # of those, initiations (two Diffie-Hellman operations a peer asked)

Check = Callable[[bytes], bool]


class Roamer:
    """Finds the station whose peer's session vouches for a stranger's frame and moves it to
    the stranger's source. `checks`: each encrypting peer's station and its check (encrypt
    layer's vouches); `drop` counts a frame that moves nothing."""

    def __init__(self, link: RoamingLink, checks: Mapping[str, Check],
                 drop: Callable[[str], None], clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self._link = link
        self._checks = dict(checks)
        self._drop = drop
        self._clock = clock
        self._bucket = TokenBucket(ROAM_BURST, ROAM_PER_SECOND)
        self._initiations = TokenBucket(ROAM_INITIATIONS, ROAM_INITIATIONS)
        self._batch: object = None  # the batch of the last move, its stranger and station
        self._moved = ("", "")
        link.let_roam(STRANGER)

    def station_of(self, source: str, frame: bytes,
                   batch: Sequence[tuple[str, bytes]]) -> str | None:
        """The station that `frame` of `batch` (as receive_from() returned it) came from, when
        a peer's session vouches for the frame of `source` (STRANGER + an address): the
        station moves there now, and the rest of the batch from there is that station's.
        None, counted, when none does."""
        if batch is self._batch and source == self._moved[0]:
            return self._moved[1]
        now = self._clock()
        initiation = bool(frame) and type_nibble(frame[0]) == HANDSHAKE_INITIATION
        if not self._bucket.take(now) or (initiation and not self._initiations.take(now)):
            self._drop(ROAM_RATE)
            return None
        copies = sum(other == frame for _source, other in batch)
        station = next((station for station, vouches in self._checks.items()
                        if vouches(frame)), None) if copies == 1 else None
        if station is None:
            self._drop(ROAM_REFUSED)
            return None
        self._link.move(station, source)
        log.info("station %s moved to %s (its peer's session vouched)", station,
                 source.removeprefix(STRANGER))
        self._batch, self._moved = batch, (source, station)
        return station
