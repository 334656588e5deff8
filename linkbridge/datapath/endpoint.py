"""What the data path moves packets between (a tunnel device, local UDP ports, or a link), and
the optional capabilities an endpoint declares by implementing them.

The data path asks "can this endpoint do X?" with isinstance() against these runtime-checkable
protocols, never with getattr. A wrapper that changes the packets (pcap, fragmentation, `--via`)
implements only what it can honour itself, so packets never bypass it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from linkbridge.datapath.counters import Counters
from linkbridge.datapath.rawport import RawPort, SealedPort


class Endpoint(Protocol):
    """A packet source and sink. `receive` blocks at most `timeout` seconds.

    Transient problems (a malformed frame, a refused send) are counted drops in `counters`;
    only a failure that ends the endpoint for good raises LinkbridgeError.
    """

    name: str

    @property
    def counters(self) -> Counters:
        """Read only here, so that a layer may keep a Counters subclass with its own figures."""
        ...

    def send(self, packet: bytes) -> None: ...

    def receive(self, timeout: float) -> list[bytes]: ...

    def close(self) -> None: ...


@runtime_checkable
class Pollable(Protocol):
    """Takes part in the data path's shared poll loop (light traffic without thread wake-ups).

    `fileno()` is a descriptor that is readable whenever receive(0) may return packets. An
    endpoint without it (one that buffers inside) always gets a thread that waits in receive().
    """

    def fileno(self) -> int: ...


@runtime_checkable
class BatchSender(Protocol):
    """Takes a batch of packets in one call, e.g. runs of equal-size datagrams in one system
    call (UDP GSO); same counters and drops as calling send() for each."""

    def send_many(self, packets: Sequence[bytes]) -> None: ...


@runtime_checkable
class SegmentSender(Protocol):
    """Sends a run of datagrams of one size (the last may be shorter) given as the pieces they
    are made of, in one system call (UDP GSO with a gathering sendmsg): see
    datagram.DatagramEndpoint.send_segments(). False when it did not: send them otherwise."""

    def send_segments(self, pieces: Sequence[bytes | memoryview], size: int, count: int,
                      length: int) -> bool: ...


@runtime_checkable
class RunSource(Protocol):
    """Reads datagrams as UDP GRO coalesced them: `receive_runs()` gives one (data, datagram
    size) per read (size 0: a single datagram), counted as receive() counts them."""

    def receive_runs(self, timeout: float) -> list[tuple[bytes, int]]: ...


@runtime_checkable
class RunSink(Protocol):
    """Takes a RunSource's reads whole (the offload layer: a read that is one super-packet's
    chunks is written without being cut into frames); each frame it cuts from the rest passes
    `check` first, a refused one counted in `drops` (the source's). Returns the number of
    datagrams (what receive() would have returned)."""

    def send_runs(self, runs: Sequence[tuple[bytes, int]],
                  check: Callable[[bytes], str | None] | None, drops: Counters) -> int: ...


@runtime_checkable
class SendsOnItself(Protocol):
    """A source that sends some of what it reads on by itself (the offload layer: a
    super-packet's chunks straight to a SegmentSender below); `sent_on()` counts those reads
    of the last receive(), which the data path counts as moved."""

    def sent_on(self) -> int: ...


@runtime_checkable
class RawPortProvider(Protocol):
    """Describes its descriptor (rawport.DevicePort or SocketPort) so that the data path's lean
    loop moves packets through it directly, with the same counters and drop reasons as its
    send() and receive(). A TUN device joined to a udp: link runs that loop."""

    def raw_port(self) -> RawPort: ...


@runtime_checkable
class SealedPortProvider(Protocol):
    """A layer that seals each packet into one frame over an endpoint with a SocketPort (the
    encrypt layer over udp:): `sealed_port()` describes it (rawport.SealedPort) so that the
    lean loop runs under it too; None when the endpoint below has no SocketPort."""

    def sealed_port(self) -> SealedPort | None: ...


@runtime_checkable
class PathMtu(Protocol):
    """Knows how large a frame it can send whole: `path_frame_size(frame_size)` is
    `frame_size`, or less where the path below is narrower (a UDP socket's route MTU). A layer
    that adds bytes to each frame answers for the endpoint below it, less what it adds."""

    def path_frame_size(self, frame_size: int) -> int: ...


@runtime_checkable
class OffloadLayer(Protocol):
    """Stands for a TUN device with offloads and turns its reads into link frames
    (offloading.OffloadingTunnel): the bridge then runs lean.offload_poller(), which drives it
    through these members."""

    @property
    def counters(self) -> Counters: ...

    frame_size: int
    next_hello: float
    chunked_last: bool  # whether its last read was cut into chunks (read_frames() reads next)

    def fileno(self) -> int: ...

    def frames_of(self, data: bytes, frames: list[bytes]) -> None: ...

    def read_frames(self, frames: list[bytes]) -> None: ...

    def hello(self) -> None: ...

    def send(self, frame: bytes) -> None: ...


@runtime_checkable
class LossReporter(Protocol):
    """Tells when a frame was lost or damaged on the way in (a framing error, a CRC mismatch):
    `on_loss(listener)` subscribes, and the endpoint calls `listener(reason)` on its receiving
    thread, inside receive(), before it returns the frames decoded with the loss. A link that
    decodes a byte stream implements it; a layer in between that cannot pass the event on does
    not declare it, so the layer above never hears of loss it cannot place."""

    def on_loss(self, listener: Callable[[str], None]) -> None: ...


@runtime_checkable
class ReturnPath(Protocol):
    """Accepts frames from one address only and sends every frame to it (udp:, a multipoint
    peer's port on it): a reply then reaches whoever sends from that address and nobody else,
    so an answer proves the return path (the encrypt layer's cookie replies).
    `return_address()` names it now (asked again for each answer: a roaming peer's moves). A
    broadcast medium (radio, a serial line anyone may tap) has none, nor has a layer that
    reorders frames."""

    def return_address(self) -> str: ...


@runtime_checkable
class StationReturnPaths(Protocol):
    """An AddressedLink on which each station is a return path (udp:): a station's frames come
    from one address only and send_to() goes there, so an answer sent to the station reaches
    whoever sends from that address and nobody else. `station_address(station)` names that
    address now (a RoamingLink's station may move). Each multipoint peer's port is then a
    ReturnPath, and the peer's encrypt layer answers a handshake flood with cookie replies
    (docs/security.md). A broadcast medium's stations (radio, KISS) are none."""

    def station_address(self, station: str) -> str: ...


@runtime_checkable
class AddressedLink(Protocol):
    """A link with many stations on it (udp: many endpoints on one socket): a multipoint
    tunnel sends each packet to the station of its peer, broadcast and multicast to all, and
    learns from whom each frame came. `set_stations()` is called before open() with every
    peer's station, in the link's own notation (udp: HOST:PORT); it raises ConfigError for one
    it cannot read. A reload that changes the peers calls it again while the link runs: the
    stations given replace those given before. A frame from a station not given is the link's
    counted drop, never returned. A link without this capability carries one peer
    (docs/multipoint.md)."""

    def set_stations(self, stations: Sequence[str]) -> None: ...

    def send_to(self, station: str, frame: bytes) -> None: ...

    def send_all(self, frame: bytes) -> None: ...

    def receive_from(self, timeout: float) -> list[tuple[str, bytes]]: ...


STRANGER = "?"  # what a RoamingLink puts before a source no station has (let_roam)


@runtime_checkable
class RoamingLink(Protocol):
    """An AddressedLink whose stations may move (udp:: a peer behind a NAT that changed its
    mapping, a laptop on another network), as WireGuard's peers roam. After `let_roam(mark)`,
    receive_from() returns a frame from a source no station has, named `mark` followed by the
    source in the link's notation, rather than dropping it; `move(station, stranger)` then
    puts the station at that source (`stranger` as receive_from() named it): its frames come
    from there and send_to() goes there. The multipoint router moves a station only for a
    frame that authenticates under its peer's encryption session (docs/multipoint.md,
    "Roaming")."""

    def let_roam(self, mark: str) -> None: ...

    def move(self, station: str, stranger: str) -> None: ...


@runtime_checkable
class Vouching(Protocol):
    """Takes a check of whether a frame comes from its peer (a multipoint peer's port): the
    encrypt layer over it calls `vouch_with(check)`, where `check(frame)` is True only for a
    frame that authenticates under the peer's session with a counter not seen yet."""

    def vouch_with(self, check: Callable[[bytes], bool]) -> None: ...


@runtime_checkable
class PathListener(Protocol):
    """Wants to know when its frames start going over another link (a multi-link failover):
    `path_changed()` is called then, on the scheduler's thread (the compress layer sends full
    headers again, so that no context set up on the old link is relied on)."""

    def path_changed(self) -> None: ...


@runtime_checkable
class Resizing(Protocol):
    """Hands the endpoint below frames of another size than its packets (the compress layer):
    `bytes_below()` is what it has handed down so far, its own frames (feedback) included, so
    that the link-aware queue above it charges a packet's time on the link by what the packet
    became, not by its size (else compression's saving is lost to the pacing)."""

    def bytes_below(self) -> int: ...


@runtime_checkable
class SendTiming(Protocol):
    """Says how fast it sends, from its own figures (a rate, a radio's key-up and airtime):
    `frame_time(size)` is how long a `size`-byte frame keeps it busy (0.0: it does not know),
    `round_trip()` the estimated round trip of a full frame and a small answer. The link-aware
    queue above paces its sends with it (docs/queue.md), so that the backlog waits there and
    not in the link's own queue (a TNC's)."""

    def frame_time(self, size: int) -> float: ...

    def round_trip(self) -> float: ...


@runtime_checkable
class SendReadiness(Protocol):
    """Says when it is ready for another frame, from its own state rather than its rate (a
    radio's queue and carrier): `ready()` is True when a frame sent now goes out soon, not
    behind a backlog of its own nor while the channel is busy with another station; the link
    calls each listener given to `on_ready(listener)` whenever that may have changed (on any
    thread, from no lock of its own); the queue also asks again every second, so a link may
    become ready by the clock alone (a stale report) without a call. The link-aware queue
    above then hands it the next packet only when it is ready (docs/queue.md), so that the
    backlog, redundant ACKs included, waits there; without it the queue paces by SendTiming
    or `--queue-rate`."""

    def ready(self) -> bool: ...

    def on_ready(self, listener: Callable[[], None]) -> None: ...
