"""The pipeline between the tunnel and the link side, described as data, validated, then built.

A `Pipeline` says what stands above (a TUN device, or local ports serving an external tunnel),
the upper stack (offload, compress, encrypt: what belongs to one peer), and the lower half
(fragment, then a link or local ports: what belongs to one link). `validate()` applies the
rules of wire/stack.py and gives a `Plan` with every frame size decided; `build()` opens it
over an ExitStack, layer by layer in the order of wire.frames.SEND_ORDER, so that a failure
undoes everything opened so far. A layer knows the one below only through the capabilities of
endpoint.py. docs/architecture.md shows how a peer's upper stack and a link's lower half
become many.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from linkbridge.datapath import mss
from linkbridge.datapath.bridge import Check
from linkbridge.datapath.compressing import CompressingEndpoint
from linkbridge.datapath.encrypting import open_layer
from linkbridge.datapath.endpoint import (
    AddressedLink,
    Endpoint,
    PathListener,
    SendReadiness,
    SendTiming,
)
from linkbridge.datapath.fragmenting import FragmentingEndpoint
from linkbridge.datapath.handshakes import HandshakeScheduler
from linkbridge.datapath.multilink import LinkScheduler
from linkbridge.datapath.multipoint import (
    PeerPort,
    PeerRouter,
    TopWrapper,
    UpperOpener,
    no_layers,
    peer_router,
    same_top,
)
from linkbridge.datapath.offloading import OffloadDevice, OffloadingTunnel, frame_problem
from linkbridge.datapath.pathmtu import path_frame_size
from linkbridge.datapath.pcap import PcapWriter, pcap_tap
from linkbridge.datapath.peerlinks import LinksPort, LinksRouter, LinkWatch, PeerLinks, SharedLinks
from linkbridge.datapath.ports import link_ports, tunnel_ports
from linkbridge.datapath.queueing import LinkSender, QueueingEndpoint, rate_frame_time
from linkbridge.datapath.repairing import RepairingEndpoint
from linkbridge.errors import ConfigError
from linkbridge.wire.compress import OFF
from linkbridge.wire.frames import SEND_ORDER, Layer
from linkbridge.wire.keys import StaticKeys
from linkbridge.wire.liveness import Thresholds
from linkbridge.wire.multilink import DATA_HEADER, RESEQUENCE_WAIT, LinkPace, Policy
from linkbridge.wire.packet import packet_problem
from linkbridge.wire.peers import PeerTable, link_station
from linkbridge.wire.queue import DEFAULT_PACKETS, LinkQueue
from linkbridge.wire.repair import link_settings
from linkbridge.wire.stack import (
    SLOW_SAMPLE,
    Compress,
    Encrypt,
    Fragment,
    Offload,
    Queue,
    Repair,
    check_compress,
    fragment_frame_size,
    offload_frame_size,
    overhead,
    queue_wanted,
)

QUEUE_ANSWER = 64  # bytes of the small answer (an ACK) in a round trip at --queue-rate
DEFAULT_MTU = 1472  # the TUN MTU when neither --mtu nor the link gives one (a 1500-byte UDP path)
ENCRYPT_NEEDS_LINK = "encryption needs a link (--link): local ports carry plain packets"
COMPRESS_NEEDS_LINK = "--compress needs a link (--link): local ports carry plain packets"
REPAIR_NEEDS_LINK = "--repair needs a link (--link): local ports carry plain packets"
MULTIPOINT_NOT_YET = "--peer with {} is not supported yet (docs/multipoint.md)"


class ClosedLink(Endpoint, Protocol):
    """A link not yet open (plugin.Link): its frame size limit, what its peer is when that may
    not be linkbridge (it then reads no fragments), and open()."""

    @property
    def mtu(self) -> int | None: ...

    @property
    def foreign_peer(self) -> str | None: ...

    def open(self) -> None: ...


class Device(Endpoint, OffloadDevice, Protocol):
    """The TUN device above, opened by tunnel/ (with a virtio_net_hdr when offload is planned)."""


@dataclass(frozen=True)
class TunDevice:
    """A TUN device above: its MTU asked for (--mtu), else the link's (else DEFAULT_MTU) less
    what the upper stack adds to a packet."""

    mtu: int | None = None


@dataclass(frozen=True)
class LocalPorts:
    """Local UDP ports: above, serving an external tunnel (`link --rx --tx`, bound to TX);
    below, feeding an external link program (`up --rx --tx`, bound to RX)."""

    rx: int
    tx: int
    host: str


@dataclass(frozen=True)
class LinkBelow:
    """A link below (made from its URL and --via wrappers, opened by build())."""

    link: ClosedLink


@dataclass(frozen=True)
class Capture:
    """A pcap file of what passes the side above (--pcap, --pcap-limit)."""

    path: str
    limit: int


@dataclass(frozen=True)
class Upper:
    """The layers of one peer, above the link side: offload, the link-aware queue, compress,
    encrypt. (Multipoint: one per peer over a shared lower half.)"""

    offload: Offload = field(default_factory=Offload)
    compress: Compress = field(default_factory=Compress)
    encrypt: Encrypt | None = None
    queue: Queue = field(default_factory=Queue)


@dataclass(frozen=True)
class Lower:
    """The layers of one link: fragment, then loss repair, over a link or local ports.
    (Multi-link: one per link under a link scheduler.)"""

    below: LinkBelow | LocalPorts
    fragment: Fragment = field(default_factory=Fragment)
    repair: Repair = field(default_factory=Repair)


@dataclass(frozen=True)
class Links:
    """The links beside the pipeline's `lower` (--link repeated, docs/multilink.md): their
    lower halves in order of preference, the policy, failover's hold time, how often each
    link is probed with the liveness thresholds that follow from it, and how long balance's
    receiver holds a frame for the ones before it (0: not at all)."""

    others: tuple[Lower, ...]
    policy: Policy
    hold_time: float
    probe_interval: float
    thresholds: Thresholds
    reorder_wait: float = RESEQUENCE_WAIT
    clamp_mss: bool = False  # lower TCP SYNs' MSS to the smallest link's size


@dataclass(frozen=True)
class Pipeline:
    """The whole description: what stands above, the upper stack, the lower half, a capture of
    the side above, whether the tunnel sends keepalives (frames the layers must carry), and
    the peers of a multipoint tunnel (None: the link's one peer, as with --remote)."""

    above: TunDevice | LocalPorts
    upper: Upper
    lower: Lower
    capture: Capture | None = None
    keepalive: bool = False
    peers: PeerTable | None = None  # a multipoint tunnel's peers (--peer), docs/multipoint.md
    # with encryption, each peer's keys by name: its stack's encrypt layer is `upper.encrypt`
    # with them
    peer_keys: Mapping[str, StaticKeys] = field(default_factory=dict)
    links: Links | None = None  # more links to the same peer, under a link scheduler


@dataclass(frozen=True)
class QueuePace:
    """How the planned queue paces its sends: a frame's time on the link, the link's round
    trip (what counts as a recent send of a retransmitted segment), its packet limit, and the
    seconds of frames the link may hold ahead (`lead`: one full frame's); or by the link's
    own word (`readiness`: a link that is SendReadiness, without `--queue-rate`)."""

    frame_time: Callable[[int], float]
    round_trip: float
    limit: int = DEFAULT_PACKETS
    lead: float = 0.0
    readiness: SendReadiness | None = None


@dataclass(frozen=True)
class Plan:
    """A validated pipeline. `tunnel_mtu`: the TUN device's MTU (0: unknown, local ports
    above); `offload_frame`: the offload layer's chunk size (None: no such layer);
    `fragment_frame`: the size the fragment layer splits to (None: no such layer, 0: it only
    reassembles); `queue`: the pace of the link-aware queue (None: no such layer)."""

    description: Pipeline
    tunnel_mtu: int
    offload_frame: int | None
    fragment_frame: int | None
    queue: QueuePace | None = None
    link_frames: tuple[int | None, ...] = ()  # the fragment frame of each of `links.others`
    mss_packets: tuple[int | None, ...] = ()  # --clamp-mss: each link's largest packet a
    # SYN's MSS allows (None: any size)

    @property
    def mss_packet(self) -> int | None:
        """--clamp-mss: the largest packet a SYN's MSS allows over the smallest link (None:
        no clamping)."""
        return min((size for size in self.mss_packets if size is not None), default=None)

    @property
    def layers(self) -> tuple[Layer, ...]:
        """The layers that run, in send order."""
        upper = self.description.upper
        present = {Layer.TUNNEL, Layer.LINK}
        present |= {layer for layer, on in (
            (Layer.OFFLOAD, self.offload_frame is not None),
            (Layer.QUEUE, self.queue is not None),
            (Layer.COMPRESS, upper.compress.mode != OFF),
            (Layer.ENCRYPT, upper.encrypt is not None),
            (Layer.FRAGMENT, self.fragment_frame is not None),
            (Layer.REPAIR, self.description.lower.repair.on)) if on}
        return tuple(layer for layer in SEND_ORDER if layer in present)


RTAX_RTO_MIN = 13  # the route metric rto_min, whose lock bit makes TCP use it
MAX_INITCWND = 10  # Linux's own initial window


def route_metrics(plan: Plan) -> dict[str, int]:
    """Route attributes (pyroute2 `metrics`) that help TCP over the queue's slow link
    (docs/queue.md): `rto_min` one link round trip (ms, locked, as `ip route ... rto_min`
    sets it) so that no retransmission timer fires before a frame can be answered, and
    `initcwnd` the full frames that fit a round trip (2 to 10), so that the first window is
    not a backlog of seconds. None without a queue; the MSS follows the device's MTU."""
    pace = plan.queue
    if pace is None or not plan.tunnel_mtu:
        return {}
    frame = pace.frame_time(plan.tunnel_mtu)
    per_round_trip = math.ceil(pace.round_trip / frame) if frame > 0 else MAX_INITCWND
    return {"lock": 1 << RTAX_RTO_MIN, "rto_min": math.ceil(pace.round_trip * 1000),
            "initcwnd": min(MAX_INITCWND, max(2, per_round_trip))}


def link_mtu(pipeline: Pipeline) -> int | None:
    """The largest frame the link below carries for the layers above the repair layer (None:
    any, or local ports below)."""
    below = pipeline.lower.below
    mtu = below.link.mtu if isinstance(below, LinkBelow) else None
    return None if mtu is None else mtu - pipeline.lower.repair.overhead


def foreign_peer(pipeline: Pipeline) -> str | None:
    """What the link's peer is when it need not be linkbridge (ClosedLink.foreign_peer)."""
    below = pipeline.lower.below
    return below.link.foreign_peer if isinstance(below, LinkBelow) else None


def tunnel_mtu(pipeline: Pipeline) -> int:
    """The MTU of the TUN device above (0 for local ports above: the external tunnel's MTU is
    unknown here)."""
    above = pipeline.above
    if isinstance(above, LocalPorts):
        return 0
    return above.mtu or ((link_mtu(pipeline) or DEFAULT_MTU) - overhead(pipeline.upper.encrypt)
                         - (DATA_HEADER if pipeline.links else 0))


def validate(pipeline: Pipeline) -> Plan:
    """Check that the layers asked for can share the link side, and decide their frame sizes;
    ConfigError names what is wrong (docs/offload.md, compression.md, fragmentation.md)."""
    upper, lower = pipeline.upper, pipeline.lower
    has_link = isinstance(lower.below, LinkBelow)
    if not has_link and upper.encrypt is not None:
        raise ConfigError(ENCRYPT_NEEDS_LINK)
    if not has_link and upper.compress.mode != OFF:
        raise ConfigError(COMPRESS_NEEDS_LINK)
    if not has_link and lower.repair.on:
        raise ConfigError(REPAIR_NEEDS_LINK)
    if lower.repair.on and pipeline.peers is not None:
        raise ConfigError(MULTIPOINT_NOT_YET.format("--repair"))
    mtu, encrypting = tunnel_mtu(pipeline), upper.encrypt is not None
    if pipeline.peers is not None:
        check_multipoint(pipeline, pipeline.peers)
    offload = None
    if pipeline.links is not None:
        check_links(pipeline)
    if isinstance(pipeline.above, TunDevice) and pipeline.peers is None \
            and pipeline.links is None:
        offload = offload_frame_size(
            upper.offload, link=has_link, link_mtu=link_mtu(pipeline), tunnel_mtu=mtu,
            encrypting=encrypting, compress=upper.compress.mode,
            capture=pipeline.capture is not None, fragment=lower.fragment.mode)
    fragment = None
    if has_link:
        # offload chunks carry what does not fit a link frame: no fragmentation layer then
        mode = "never" if offload is not None else lower.fragment.mode
        packet = mtu + overhead(upper.encrypt) if encrypting and mtu else mtu
        if pipeline.links is not None and packet:
            packet += DATA_HEADER
        fragment = fragment_frame_size(mode, packet, link_mtu(pipeline),
                                       foreign=foreign_peer(pipeline))
        check_compress(upper.compress.mode, fragmenting=fragment is not None,
                       encrypting=encrypting, keepalive=pipeline.keepalive)
    frames = () if pipeline.links is None else tuple(
        fragment_frame_size(lower.fragment.mode, packet, lower_mtu(lower))
        for lower in pipeline.links.others)
    return Plan(pipeline, mtu, offload, fragment, queue=queue_pace(pipeline, mtu),
                link_frames=frames, mss_packets=mss_packets(pipeline))


def mss_packets(pipeline: Pipeline) -> tuple[int | None, ...]:
    """With --clamp-mss over several links: for each link the largest packet that goes whole
    over it (its frame less the repair, encryption and sequence overheads; None: a link
    without a size); nothing without."""
    links = pipeline.links
    if links is None or not links.clamp_mss:
        return ()
    less = overhead(pipeline.upper.encrypt) + DATA_HEADER
    return tuple(None if (mtu := lower_mtu(lower)) is None else mtu - lower.repair.overhead - less
                 for lower in (pipeline.lower, *links.others))


def link_paces(pipeline: Pipeline) -> list[LinkPace | None]:
    """Each link's pace by its own figures (SendTiming), for the balance policy: its frame
    time, and as its delay half its round trip less a full frame's time; None for a link that
    declares none."""
    lowers = (pipeline.lower, *(pipeline.links.others if pipeline.links else ()))
    links = [lower.below.link if isinstance(lower.below, LinkBelow) else None
             for lower in lowers]
    return [LinkPace(link.frame_time,
                     max(0.0, (link.round_trip() - link.frame_time(DEFAULT_MTU)) / 2))
            if isinstance(link, SendTiming) and link.frame_time(SLOW_SAMPLE) else None
            for link in links]


def lower_mtu(lower: Lower) -> int | None:
    """The largest frame the link of `lower` carries (None: any)."""
    return lower.below.link.mtu if isinstance(lower.below, LinkBelow) else None


def check_links(pipeline: Pipeline) -> None:
    """The rules of several links (docs/multilink.md): links only (no local ports), no offload
    layer (its chunks are sized to one link)."""
    lowers = (pipeline.lower, *(pipeline.links.others if pipeline.links else ()))
    if not all(isinstance(lower.below, LinkBelow) for lower in lowers):
        raise ConfigError("several links need --link for each, not local ports")
    if pipeline.upper.offload.mode == "on":
        raise ConfigError("--offload on cannot run over several links (docs/multilink.md)")


def queue_pace(pipeline: Pipeline, mtu: int) -> QueuePace | None:
    """The queue's pace when it runs (wire.stack.queue_wanted()): `--queue-rate`, else the
    link's own word (SendReadiness) or figures (SendTiming); the round trip the link's, else a
    full frame and a small answer at the rate."""
    below, queue = pipeline.lower.below, pipeline.upper.queue
    timing = below.link if isinstance(below, LinkBelow) else None
    if not isinstance(timing, SendTiming):
        timing = None
    link_time = timing.frame_time(SLOW_SAMPLE) if timing is not None else 0.0
    if not queue_wanted(queue, link_time):
        return None
    limit, frame = queue.limit or DEFAULT_PACKETS, link_mtu(pipeline) or mtu or DEFAULT_MTU
    if queue.rate is None:
        assert timing is not None  # queue_wanted() refuses a queue without a pace
        # over several links the scheduler may send on another: pace by the figures
        readiness = (below.link if isinstance(below.link, SendReadiness)
                     and pipeline.links is None else None)
        return QueuePace(timing.frame_time, timing.round_trip(), limit,
                         timing.frame_time(frame), readiness)
    frame_time = rate_frame_time(queue.rate)
    round_trip = (timing.round_trip() if timing is not None
                  else frame_time(frame) + frame_time(QUEUE_ANSWER))
    return QueuePace(frame_time, round_trip, limit, frame_time(frame))


def check_multipoint(pipeline: Pipeline, peers: PeerTable) -> None:
    """The rules of a multipoint tunnel (docs/multipoint.md): a link below, no offload yet
    (compression and encryption run per peer, the latter with every peer's keys), and a link
    with station addresses for more than one peer, which gets every peer's station now
    (ConfigError for one it cannot read)."""
    upper, below = pipeline.upper, pipeline.lower.below
    if not isinstance(below, LinkBelow):
        raise ConfigError("--peer needs a link (--link): local ports carry one peer")
    if upper.offload.mode == "on":
        raise ConfigError(MULTIPOINT_NOT_YET.format("--offload on"))
    if upper.encrypt is not None and set(pipeline.peer_keys) != {p.name for p in peers.peers}:
        raise ConfigError("with encryption every peer needs its public key (key=)")
    if pipeline.links is not None:
        check_peer_links(pipeline, peers)
        return
    link = below.link
    stations = [station for peer in peers.peers for station in peer.stations]
    if isinstance(link, AddressedLink):
        for peer in peers.peers:
            if len(peer.stations) != 1:
                raise ConfigError(f"peer {peer.name!r}: give one endpoint= (its station on "
                                  f"{link.name}), not {len(peer.stations)}")
        link.set_stations(stations)
    elif len(peers.peers) > 1 or stations:
        foreign = link.foreign_peer
        raise ConfigError(f"link {link.name} has no station addresses: it carries one peer"
                          f"{f', {foreign},' if foreign else ''} and no endpoint= (udp:, "
                          f"sim: stations, kiss: mode=ax25|ethernet carry several, "
                          f"docs/multipoint.md)")


def check_peer_links(pipeline: Pipeline, peers: PeerTable) -> None:
    """The stations of a multipoint tunnel over several links (docs/multipoint.md): every
    link addressed, each peer's endpoint= LINK:STATION (one at least, one a link at most),
    some peer on every link, which gets its stations now."""
    lowers = (pipeline.lower, *(pipeline.links.others if pipeline.links else ()))
    links = [lower.below.link for lower in lowers if isinstance(lower.below, LinkBelow)]
    if len(links) < len(lowers):
        raise ConfigError("several links need --link for each, not local ports")
    addressed: list[AddressedLink] = []
    for number, link in enumerate(links, 1):
        if not isinstance(link, AddressedLink):
            raise ConfigError(f"--peer with several --link: link {number} ({link.name}) has no "
                              f"station addresses (udp: with bind=, sim: with station=; "
                              f"docs/multipoint.md)")
        addressed.append(link)
    stations: list[list[str]] = [[] for _ in links]
    for peer in peers.peers:
        where = f"peer {peer.name!r}"
        used = dict(link_station(station, len(links), where) for station in peer.stations)
        if len(used) != len(peer.stations) or not used:
            raise ConfigError(f"{where}: give one endpoint=LINK:STATION for each link it "
                              f"uses, at least one")
        for index, station in used.items():
            stations[index].append(station)
    for number, (link, names) in enumerate(zip(links, stations, strict=True), 1):
        if not names:
            raise ConfigError(f"link {number} ({link.name}): no peer has an endpoint= on it")
    for stations_of, names in zip(addressed, stations, strict=True):
        stations_of.set_stations(names)


@dataclass(frozen=True)
class Opened:
    """A built pipeline: the bridge joins `tunnel_side` to `link_side`, checking each frame
    towards the tunnel side with `check`."""

    tunnel_side: Endpoint
    link_side: Endpoint
    check: Check = packet_problem
    scheduler: LinkWatch | None = None  # several links: their scheduler (or each peer's)


def build(plan: Plan, stack: contextlib.ExitStack, device: Device | None = None) -> Opened:
    """Open `plan` below the TUN `device` (given when a TunDevice stands above) or the local
    ports above; every undo goes on `stack`."""
    pipeline = plan.description
    above = open_above(pipeline.above, device, stack)
    clamp = None
    if plan.mss_packet is not None:
        above = clamp = mss.MssClamp(above, plan.mss_packet)
    if pipeline.capture is not None:
        writer = PcapWriter.create(pipeline.capture.path, pipeline.capture.limit)
        stack.callback(writer.close)
        above = pcap_tap(above, writer)
    # a multipoint tunnel fragments in each peer's stack (open_peer), not on the shared link
    below = open_lower(pipeline.lower, plan.fragment_frame if pipeline.peers is None else None,
                       stack)
    scheduler: LinkScheduler | None = None
    if pipeline.links is not None and pipeline.peers is not None:
        below = share_links(below, pipeline, stack)
    elif pipeline.links is not None:
        below = scheduler = open_links(below, pipeline.links, plan.link_frames, stack,
                                       link_paces(pipeline))
    queued = queue_over(plan.queue, below.name, stack)
    watch: LinkWatch | None = scheduler
    if pipeline.peers is None:
        link_side = open_upper(pipeline.upper, below, stack)
        follow_switches(scheduler, link_side)
        link_side = queued(link_side, stack)
    else:
        handshakes = None
        if pipeline.upper.encrypt is not None:  # one handshake thread for every peer
            handshakes = HandshakeScheduler(below.name)
            stack.callback(handshakes.close)
        opener = peer_opener(plan, handshakes, queued)
        router: PeerRouter
        if isinstance(below, SharedLinks):
            router = links_router(below, pipeline, opener, handshakes)
            watch = PeerLinks(router)
        else:
            router = peer_router(below, pipeline.peers, opener, handshakes)
        link_side = router
        router.top = queued  # a reload's new peers get their queue on the same sender
        stack.callback(router.close_peers)
    if clamp is not None and watch is not None:  # the smallest of the links up at each SYN
        clamp.largest = mss.smallest_up(plan.mss_packets, watch)
    if plan.offload_frame is None or device is None:
        return Opened(above, link_side, scheduler=watch)
    offloading = OffloadingTunnel(device, path_frame_size(link_side, plan.offload_frame))
    offloading.attach(link_side)
    return Opened(offloading, link_side, frame_problem)


def follow_switches(scheduler: LinkScheduler | None, top: Endpoint) -> None:
    """Tell `top` (a compress layer) when `scheduler` moves to another link (full headers
    after a failover)."""
    if scheduler is not None and isinstance(top, PathListener):
        scheduler.on_switch(top.path_changed)


def links_router(shared: SharedLinks, pipeline: Pipeline, opener: UpperOpener,
                 handshakes: HandshakeScheduler | None) -> LinksRouter:
    """The router over a multipoint tunnel's shared links; it wakes a peer's resequencing
    when its wait ends when the policy resequences."""
    assert pipeline.links is not None and pipeline.peers is not None
    router = LinksRouter(shared, pipeline.peers, opener, handshakes)
    router.resequencing = (pipeline.links.policy == Policy.BALANCE
                           and pipeline.links.reorder_wait > 0)
    return router


def share_links(first: Endpoint, pipeline: Pipeline, stack: contextlib.ExitStack
                ) -> SharedLinks:
    """A multipoint tunnel's links (the first opened as `first`, the others here, none under
    a fragment layer: each peer fragments per link) as one AddressedLink of every peer's
    stations (check_peer_links() made sure every link has stations)."""
    assert pipeline.links is not None and pipeline.peers is not None
    opened = [first, *(open_lower(lower, None, stack) for lower in pipeline.links.others)]
    shared = SharedLinks([link for link in opened if isinstance(link, AddressedLink)],
                         pipeline.links.probe_interval)
    stack.callback(shared.close)
    shared.set_stations([station for peer in pipeline.peers.peers for station in peer.stations])
    return shared


def open_above(above: TunDevice | LocalPorts, device: Device | None,
               stack: contextlib.ExitStack) -> Endpoint:
    """The side above: the TUN device given, or local ports serving an external tunnel."""
    if isinstance(above, LocalPorts):
        ports = link_ports(above.rx, above.tx, above.host)
        stack.callback(ports.close)
        return ports
    if device is None:
        raise ValueError("a TUN device above is opened by tunnel/ and given to build()")
    return device


def open_lower(lower: Lower, fragment_frame: int | None, stack: contextlib.ExitStack
               ) -> Endpoint:
    """One link's half: the link (or local ports for an external link program), under the
    repair layer when `lower` asks for it, under the fragment layer when the plan gives it a
    `fragment_frame`."""
    if isinstance(lower.below, LocalPorts):
        ports = tunnel_ports(lower.below.rx, lower.below.tx, lower.below.host)
        stack.callback(ports.close)
        return ports
    link: Endpoint = lower.below.link
    lower.below.link.open()
    stack.callback(link.close)
    if lower.repair.on:
        timing = lower.below.link
        round_trip = timing.round_trip() if isinstance(timing, SendTiming) else None
        settings = link_settings(round_trip, half_duplex=isinstance(timing, SendReadiness))
        link = RepairingEndpoint(link, lower.repair.mode, settings, mtu=timing.mtu)
    if fragment_frame is None:
        return link
    return FragmentingEndpoint(link, fragment_frame, lower.fragment.timeout)


def queue_over(pace: QueuePace | None, name: str, stack: contextlib.ExitStack) -> TopWrapper:
    """What puts the link-aware queue over the top of a stack (a queue per multipoint peer,
    one sender over link `name` for all, its thread stopped by `stack`; each queue leaves the
    sender when the `undo` it is given closes: a peer removed by a reload); without a queue
    planned, the top itself."""
    if pace is None:
        return same_top
    sender = LinkSender(name, pace.frame_time, pace.lead, readiness=pace.readiness)
    stack.callback(sender.stop)
    # a segment handed down waits up to `lead` in the link before it goes out: its round
    # trip starts then
    window = pace.round_trip + pace.lead

    def queued(top: Endpoint, undo: contextlib.ExitStack) -> Endpoint:
        endpoint = QueueingEndpoint(top, LinkQueue(window, pace.limit), sender)
        undo.callback(sender.remove, endpoint)
        return endpoint

    return queued


def open_links(first: Endpoint, links: Links, frames: Sequence[int | None],
               stack: contextlib.ExitStack,
               paces: Sequence[LinkPace | None] = ()) -> LinkScheduler:
    """The link scheduler over `first` and the lower half of each of `links.others`."""
    lowers = [first, *(open_lower(lower, frame, stack)
                       for lower, frame in zip(links.others, frames, strict=True))]
    scheduler = LinkScheduler(lowers, links.policy, links.thresholds, links.hold_time,
                              links.probe_interval, paces=paces,
                              reorder_wait=links.reorder_wait)
    stack.callback(scheduler.close)
    return scheduler


def peer_opener(plan: Plan, handshakes: HandshakeScheduler | None = None,
                top: TopWrapper = same_top) -> UpperOpener:
    """What opens each peer's stack over its port (no_layers when the peers run none: no
    fragmenting, compression, encryption or queue), its handshakes on `handshakes`, `top` over
    it (the link-aware queue); a reload's new plan gives the one for the peers it adds."""
    upper = plan.description.upper
    if (upper.compress.mode == OFF and upper.encrypt is None and plan.fragment_frame is None
            and top is same_top and plan.description.links is None):
        return no_layers
    return lambda port, undo: top(open_peer(plan, port, undo, handshakes), undo)


def peer_upper(pipeline: Pipeline, name: str) -> Upper:
    """The upper stack of peer `name`: the pipeline's, its encrypt layer with the peer's keys."""
    encrypt = pipeline.upper.encrypt
    if encrypt is None:
        return pipeline.upper
    return replace(pipeline.upper, encrypt=replace(encrypt, keys=pipeline.peer_keys[name]))


def open_peer(plan: Plan, port: PeerPort, stack: contextlib.ExitStack,
              handshakes: HandshakeScheduler | None = None) -> Endpoint:
    """One peer's stack over its port on the shared link: a fragment layer of its own (its
    own reassembly, so that no peer's fragments meet another's) when the plan fragments,
    under the peer's upper stack (its handshakes on `handshakes` when given); over several
    links, the peer's link scheduler (peer_scheduler()) under it."""
    pipeline = plan.description
    below: Endpoint = port
    scheduler = None
    if isinstance(port, LinksPort):
        below = scheduler = peer_scheduler(plan, port, stack)
    elif plan.fragment_frame is not None:
        below = FragmentingEndpoint(port, plan.fragment_frame, pipeline.lower.fragment.timeout)
    top = open_upper(peer_upper(pipeline, port.name), below, stack, handshakes)
    follow_switches(scheduler, top)
    return top


def peer_scheduler(plan: Plan, port: LinksPort, stack: contextlib.ExitStack) -> LinkScheduler:
    """A peer's link scheduler over its ports on the links it uses, each under a fragment
    layer of its own when its link's frames are smaller than the tunnel's; no reader threads
    (the router hands the ports their frames), closed by `stack`."""
    pipeline, links = plan.description, plan.description.links
    assert links is not None
    frames, paces = (plan.fragment_frame, *plan.link_frames), link_paces(pipeline)
    lowers: list[Endpoint] = []
    for station in port.ports:
        frame = frames[station.link_index]
        lowers.append(station if frame is None else FragmentingEndpoint(
            station, frame, pipeline.lower.fragment.timeout))
    scheduler = LinkScheduler(lowers, links.policy, links.thresholds, links.hold_time,
                              links.probe_interval,
                              paces=[paces[station.link_index] for station in port.ports],
                              reorder_wait=links.reorder_wait, readers=False)
    stack.callback(scheduler.close)
    port.scheduler = scheduler
    return scheduler


def open_upper(upper: Upper, below: Endpoint, stack: contextlib.ExitStack,
               handshakes: HandshakeScheduler | None = None) -> Endpoint:
    """One peer's stack over the lower half `below`: encrypt (its handshakes on `handshakes`
    when given, else in a thread of its own), then compress above it (the offload layer stands
    in for the TUN device, see build())."""
    if upper.encrypt is not None:
        below = open_layer(below, upper.encrypt, stack, handshakes)
    return below if upper.compress.mode == OFF else CompressingEndpoint(below, upper.compress.mode)
