"""Each peer's liveness in a multipoint tunnel (docs/multipoint.md, "Per-peer liveness"): `up`,
`stale` or `down` from the time since a frame of its last came up its stack (its packets, its
keepalives; with encryption only what authenticated as the peer, so garbage from its station
keeps nothing alive), with the tunnel's thresholds, and what a peer hook is told.

The supervisor's loop observes it with the link's own liveness; the router's counters are
read, never locked, and a peer a reload removed is forgotten.
"""

from __future__ import annotations

from linkbridge.datapath.multipoint import PeerRouter
from linkbridge.wire.liveness import Change, LinkState, Liveness, Thresholds
from linkbridge.wire.peers import Peer


def peer_environment(peer: Peer, state: str) -> dict[str, str]:
    """What a peer hook finds in its environment besides the tunnel's LINKBRIDGE_*."""
    return {"LINKBRIDGE_PEER": peer.name,
            "LINKBRIDGE_PEER_ENDPOINT": " ".join(peer.stations),
            "LINKBRIDGE_PEER_ALLOWED": " ".join(map(str, peer.allowed)),
            "LINKBRIDGE_PEER_STATE": state}


class PeerWatch:
    """The liveness of every peer of `router`, each fed the frames received from it."""

    def __init__(self, router: PeerRouter, thresholds: Thresholds) -> None:
        self.router = router
        self.thresholds = thresholds
        self._states: dict[str, tuple[Peer, Liveness]] = {}

    def observe(self, now: float) -> list[tuple[Peer, Change]]:
        """Update every peer's state; the peers whose state changed, with the change. A peer
        that is new (or that a reload changed) starts `down`, as the link does; one a reload
        removed goes `down` if it was not."""
        changes = []
        states: dict[str, tuple[Peer, Liveness]] = {}
        for peer, frames in self.router.peer_frames():
            known = self._states.get(peer.name)
            liveness = known[1] if known is not None and known[0] == peer \
                else Liveness(self.thresholds, now)
            states[peer.name] = (peer, liveness)
            change = liveness.observe(frames, now)
            if change is not None:
                changes.append((peer, change))
        for name, (peer, liveness) in self._states.items():
            if name not in states and liveness.state != LinkState.DOWN:
                changes.append((peer, Change(liveness.state, LinkState.DOWN,
                                             "removed by reload")))
        self._states = states
        return changes

    def status(self, now: float) -> dict[str, dict[str, object]]:
        """Each peer's state for `status`: the state, for how long, the silence, the
        keepalives sent to it."""
        keepalives = self.router.keepalives
        result: dict[str, dict[str, object]] = {}
        for name, (_peer, liveness) in self._states.items():
            silent = liveness.silent_for(now)
            result[name] = {"state": str(liveness.state),
                            "state_for_s": round(now - liveness.since, 3),
                            "last_frame_s": None if silent is None else round(silent, 3),
                            "keepalives_sent": keepalives.get(name, 0)}
        return result
