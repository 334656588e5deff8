"""The status of one running tunnel as typed data, and the one place where a received status
document becomes that data (`parse_tunnel`).

A tunnel serves its status as a JSON document (ops/status.py builds it from its endpoints'
counters); every reader parses it here, then formats the typed form (status_format.py, metrics.py,
watch.py, the lab report). A key an older process did not send takes its default; a value of the
wrong type raises ValueError. The document as served stays in `TunnelStatus.document` for
`status --json`, so keys newer than this reader pass through untouched. Pure.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

# `side` labels of the two sides of a tunnel, as `status`, the metrics and --watch name them
TUNNEL_SIDE = "tunnel"
LINK_SIDE = "link"
LINK_ROW = "link:"  # followed by the link's name: one side per link of a multi-link tunnel
PEER_SIDE = "peer:"  # followed by the peer's name: one side per peer of a multipoint tunnel


@dataclass(frozen=True)
class CompressDirection:
    """One direction's header compression figures (`--compress`)."""

    packets: int = 0  # packets through the layer
    compressed: int = 0  # crossed as compressed headers
    full: int = 0  # crossed as full headers that set up a context
    saved: int = 0  # header bytes saved
    feedback: int = 0  # feedback frames (tx: sent to the peer, rx: received from it)


@dataclass(frozen=True)
class Compression:
    """The compress layer's mode and figures per direction."""

    mode: str = "?"
    tx: CompressDirection = CompressDirection()
    rx: CompressDirection = CompressDirection()


@dataclass(frozen=True)
class Encryption:
    """The encrypt layer's session (`last_handshake`: Unix time; None: none yet)."""

    state: str = "?"
    cipher: str | None = None
    handshakes: int = 0
    last_handshake: float | None = None
    session_age_s: float | None = None
    handshake_s: float | None = None
    public_key: str | None = None


@dataclass(frozen=True)
class Repair:
    """The loss-repair layer's figures (`--repair`): frames sent again, rebuilt from parity,
    given up, received twice; the loss measured on frames in and as the peer reports it on
    frames out; the retransmission timeout and the parity frames per group (wire/fec.GROUP)."""

    mode: str = "?"
    retransmissions: int = 0
    repaired: int = 0
    unrepaired: int = 0
    duplicates: int = 0
    loss: float = 0.0
    peer_loss: float = 0.0
    rto_ms: int = 0
    parity: int = 0

    COUNTERS = ("retransmissions", "repaired", "unrepaired", "duplicates")


@dataclass(frozen=True)
class SideStatus:
    """The counters of one endpoint: the device, a layer or a link (rx: what it received, tx:
    what it sent, drops by reason in the order served), with what a layer adds (compression,
    encryption) and the counters of the endpoint below a layer (`below`)."""

    name: str = ""
    rx_packets: int = 0
    rx_bytes: int = 0
    tx_packets: int = 0
    tx_bytes: int = 0
    drops: Mapping[str, int] = field(default_factory=dict)
    offload: Mapping[str, int] = field(default_factory=dict)  # UDP GSO/GRO use
    compression: Compression | None = None
    encryption: Encryption | None = None
    below: SideStatus | None = None
    repair: Repair | None = None

    def stack(self) -> Iterator[SideStatus]:
        """This endpoint, then each one below it down to the link."""
        side: SideStatus | None = self
        while side is not None:
            yield side
            side = side.below


@dataclass(frozen=True)
class LinkLiveness:
    """What the tunnel knows of its link's liveness and keepalives (`up` tunnels only)."""

    state: str = "down"  # up, stale or down
    for_s: float = 0.0  # seconds in that state
    last_frame_s: float | None = None  # seconds since the last frame from the link
    keepalive_s: float | None = None  # the --keepalive interval
    keepalives_sent: int = 0


@dataclass(frozen=True)
class TunnelStatus:
    """One running tunnel (or `link` process): what it is and the counters of its sides.

    `tunnel` counts the device side (rx: read from the device, tx: written into it), `link_side`
    the link side and the layers over it (tx: sent to the peer, rx: received from it). Every
    format takes its rows from `sides()`: a multipoint tunnel's peers (each its own stack of
    layers over the shared link side) become a field of their own and rows there.
    """

    device: str = "?"
    pid: int = 0
    uid: int | None = None
    link: str = ""
    mtu: int = 0
    addresses: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()
    started: float = 0.0  # Unix time
    uptime_s: float = 0.0  # measured by the tunnel when it answered
    tunnel: SideStatus = SideStatus()
    link_side: SideStatus = SideStatus()
    liveness: LinkLiveness | None = None
    config: str | None = None  # the config file it runs from
    config_key: str | None = None
    reasons: Mapping[str, str] = field(default_factory=dict)  # counted drop reason -> meaning
    peers: tuple[tuple[str, SideStatus], ...] = ()  # a multipoint tunnel's, by name
    links: tuple[tuple[str, SideStatus], ...] = ()  # a multi-link tunnel's, by link name
    # LINK_ROW + name (several links), PEER_SIDE + name (peers) -> state
    link_states: Mapping[str, str] = field(default_factory=dict)
    document: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def sides(self) -> tuple[tuple[str, SideStatus], ...]:
        """(label, counters) of each side, in the order every format shows them: the device,
        the link side, then each peer of a multipoint tunnel (`peer:NAME`), each link of a
        multi-link tunnel (`link:NAME`)."""
        return ((TUNNEL_SIDE, self.tunnel), (LINK_SIDE, self.link_side),
                *((PEER_SIDE + name, side) for name, side in self.peers),
                *((LINK_ROW + name, side) for name, side in self.links))


def parse_tunnel(document: object) -> TunnelStatus:
    """The typed form of a status document; ValueError names a key whose value is of the wrong
    type. Missing keys (an older process) take the defaults above."""
    doc = _object(document, "status document")
    link_side = _object(doc.get("link_side", {}), "link_side")
    peers = _object(link_side.get("peers", {}), "link_side.peers")
    links = [_object(link, "links[]") for link in doc.get("links", [])]
    liveness = None
    if "link_state" in doc:
        liveness = LinkLiveness(_str(doc, "link_state", "down"),
                                _float(doc, "link_state_for_s", 0.0),
                                _float_or_none(doc, "last_frame_s"),
                                _float_or_none(doc, "keepalive_s"),
                                _int(doc, "keepalives_sent", 0))
    return TunnelStatus(
        device=_str(doc, "device", "?"), pid=_int(doc, "pid", 0),
        uid=_int_or_none(doc, "uid"),
        link=_str(doc, "link", ""), mtu=_int(doc, "mtu", 0),
        addresses=_strings(doc, "addresses"), routes=_strings(doc, "routes"),
        started=_float(doc, "started", 0.0), uptime_s=_float(doc, "uptime_s", 0.0),
        tunnel=parse_side(doc.get("tunnel", {}), "tunnel"),
        link_side=parse_side(link_side, "link_side"),
        peers=tuple((str(name), parse_side(side, f"link_side.peers.{name}"))
                    for name, side in peers.items()),
        links=tuple((_str(link, "name", "?"),
                     parse_side(link.get("counters", {}), "links[].counters"))
                    for link in links),
        link_states={**{LINK_ROW + _str(link, "name", "?"):
                        _str(link, "state", "down") + ("*" if link.get("active") else "")
                        for link in links}, **peer_states(doc)},
        liveness=liveness, config=_str_or_none(doc, "config"),
        config_key=_str_or_none(doc, "config_key"), reasons=_descriptions(doc, "reasons"),
        document=doc)


def peer_states(doc: Mapping[str, Any]) -> dict[str, str]:
    """PEER_SIDE + name -> the state of each peer of a multipoint tunnel (up, stale, down)."""
    states = _object(doc.get("peer_states", {}), "peer_states")
    return {PEER_SIDE + str(name): _str(_object(state, f"peer_states.{name}"), "state", "down")
            for name, state in states.items()}


def _descriptions(doc: Mapping[str, Any], key: str) -> dict[str, str]:
    """A map of reason -> description (the tunnel's `reasons`), empty when absent."""
    value = _object(doc.get(key, {}), key)
    return {str(reason): str(text) for reason, text in value.items()}


def parse_side(value: object, where: str) -> SideStatus:
    """The counters of one endpoint (`where`: its key, for errors), with the ones below it."""
    side = _object(value, where)
    compress = side.get("compress")
    encryption = side.get("encryption")
    below = side.get("frames")
    repair = side.get("repair")
    return SideStatus(
        name=_str(side, "name", ""),
        rx_packets=_int(side, "rx_packets", 0), rx_bytes=_int(side, "rx_bytes", 0),
        tx_packets=_int(side, "tx_packets", 0), tx_bytes=_int(side, "tx_bytes", 0),
        drops=_counts(side, "drops", where), offload=_counts(side, "offload", where),
        compression=None if compress is None else _compression(compress, f"{where}.compress"),
        encryption=None if encryption is None else _encryption(encryption,
                                                               f"{where}.encryption"),
        below=None if below is None else parse_side(below, f"{where}.frames"),
        repair=None if repair is None else _repair(repair, f"{where}.repair"))


def _repair(value: object, where: str) -> Repair:
    figures = _object(value, where)
    counts = {key: _int(figures, key, 0) for key in Repair.COUNTERS}
    return Repair(_str(figures, "mode", "?"), counts["retransmissions"], counts["repaired"],
                  counts["unrepaired"], counts["duplicates"],
                  _float_or_none(figures, "loss") or 0.0,
                  _float_or_none(figures, "peer_loss") or 0.0,
                  _int(figures, "rto_ms", 0), _int(figures, "parity", 0))


def _compression(value: object, where: str) -> Compression:
    figures = _object(value, where)
    tx, rx = (_direction(figures.get(way, {}), f"{where}.{way}") for way in ("tx", "rx"))
    return Compression(_str(figures, "mode", "?"), tx, rx)


def _direction(value: object, where: str) -> CompressDirection:
    one = _object(value, where)
    return CompressDirection(*(_int(one, key, 0) for key in (
        "packets", "compressed", "full", "saved", "feedback")))


def _encryption(value: object, where: str) -> Encryption:
    state = _object(value, where)
    return Encryption(_str(state, "state", "?"), _str_or_none(state, "cipher"),
                      _int(state, "handshakes", 0), _float_or_none(state, "last_handshake"),
                      _float_or_none(state, "session_age_s"),
                      _float_or_none(state, "handshake_s"), _str_or_none(state, "public_key"))


def _object(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected an object, not {type(value).__name__}")
    return value


def _int(doc: Mapping[str, Any], key: str, default: int) -> int:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key}: expected a whole number, not {value!r}")
    return value


def _int_or_none(doc: Mapping[str, Any], key: str) -> int | None:
    return None if doc.get(key) is None else _int(doc, key, 0)


def _float(doc: Mapping[str, Any], key: str, default: float) -> float:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key}: expected a number, not {value!r}")
    return float(value)


def _float_or_none(doc: Mapping[str, Any], key: str) -> float | None:
    return None if doc.get(key) is None else _float(doc, key, 0.0)


def _str(doc: Mapping[str, Any], key: str, default: str) -> str:
    value = doc.get(key, default)
    if not isinstance(value, str):
        raise ValueError(f"{key}: expected a string, not {value!r}")
    return value


def _str_or_none(doc: Mapping[str, Any], key: str) -> str | None:
    return None if doc.get(key) is None else _str(doc, key, "")


def _strings(doc: Mapping[str, Any], key: str) -> tuple[str, ...]:
    values = doc.get(key, [])
    if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
        raise ValueError(f"{key}: expected a list of strings, not {values!r}")
    return tuple(values)


def _counts(doc: Mapping[str, Any], key: str, where: str) -> dict[str, int]:
    counts = _object(doc.get(key, {}), f"{where}.{key}")
    return {reason: _int(counts, reason, 0) for reason in counts}
