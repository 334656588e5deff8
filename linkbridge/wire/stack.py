"""The layers between the tunnel and a link as data: each layer's options, and the rules of
which layers can share a link and at what frame sizes. Pure: no I/O.

datapath/pipeline.py puts these options into a description of a whole pipeline, validates it
with the rules here and builds it; docs/architecture.md shows the order (frames.SEND_ORDER).
"""

from __future__ import annotations

from dataclasses import dataclass

from linkbridge.errors import ConfigError
from linkbridge.wire.compress import MODES as COMPRESS_MODES
from linkbridge.wire.compress import OFF, VJ
from linkbridge.wire.fragment import DEFAULT_TIMEOUT, check_frame_size
from linkbridge.wire.offload import MIN_FRAME_SIZE, offload_attempts
from linkbridge.wire.repair import MODES as REPAIR_MODES
from linkbridge.wire.repair import OFF as REPAIR_OFF
from linkbridge.wire.repair import OVERHEAD as REPAIR_OVERHEAD
from linkbridge.wire.secure import OVERHEAD, StaticKeys, Timers

OFFLOAD_MODES = ("off", "auto", "on")
QUEUE_MODES = ("auto", "on", "off")
SLOW_SAMPLE = 1000  # bytes: a frame this large ...
SLOW_FRAME_TIME = 0.01  # ... taking this many seconds or more makes a link slow (< 800 kbit/s)
FRAGMENT_MODES = ("auto", "always", "never")


@dataclass(frozen=True)
class Offload:
    """The offload layer (`--offload`, `--offload-flags`): TUN super-packets as chunks."""

    mode: str = "off"
    flags: str = ""  # what to ask of the kernel (wire.offload.offload_attempts)


@dataclass(frozen=True)
class Compress:
    """The header compression layer (`--compress`)."""

    mode: str = OFF


@dataclass(frozen=True)
class Encrypt:
    """The encrypt layer (`--private-key`, `--peer-public-key`): keys read, timers checked;
    `state_dir` (`--state-dir`) keeps the peer's newest handshake timestamp across restarts,
    given to `state_owner` (uid, gid: the --user the process drops to) when set."""

    keys: StaticKeys
    timers: Timers
    state_dir: str | None = None
    state_owner: tuple[int, int] | None = None


@dataclass(frozen=True)
class Fragment:
    """The fragmentation layer (`--fragment`, `--fragment-timeout`)."""

    mode: str = "never"
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class Queue:
    """The link-aware queue (`--queue`, `--queue-rate` in bit/s, `--queue-limit` in packets;
    docs/queue.md)."""

    mode: str = "auto"
    rate: float | None = None
    limit: int | None = None


def queue_wanted(queue: Queue, link_frame_time: float) -> bool:
    """Whether the queue runs: `on`, or `auto` where a SLOW_SAMPLE-byte frame takes
    SLOW_FRAME_TIME or more at `--queue-rate`, else by the link's figures (`link_frame_time`:
    the link's time for such a frame, 0.0 when it declares none). ConfigError for `on` without
    a pace (neither a rate nor the link's figures)."""
    if queue.mode not in QUEUE_MODES:
        raise ConfigError(f"--queue {queue.mode!r}: choose one of {', '.join(QUEUE_MODES)}")
    if queue.rate is not None and queue.rate <= 0:
        raise ConfigError("--queue-rate must be above 0 bit/s")
    if queue.limit is not None and queue.limit < 1:
        raise ConfigError("--queue-limit must be a whole number above 0")
    sample = SLOW_SAMPLE * 8 / queue.rate if queue.rate else link_frame_time
    if queue.mode != "on":
        return queue.mode == "auto" and sample >= SLOW_FRAME_TIME
    if sample <= 0:
        raise ConfigError("--queue on needs a pace: this link declares no rate of its own; "
                          "give --queue-rate")
    return True


@dataclass(frozen=True)
class Repair:
    """The loss-repair layer (`--repair`): off, link ARQ, packet-level FEC, or auto."""

    mode: str = REPAIR_OFF

    def __post_init__(self) -> None:
        if self.mode not in REPAIR_MODES:
            raise ConfigError(f"--repair {self.mode!r}: choose one of {', '.join(REPAIR_MODES)}")

    @property
    def on(self) -> bool:
        return self.mode != REPAIR_OFF

    @property
    def overhead(self) -> int:
        """The bytes the layer adds to each frame of the layers above."""
        return REPAIR_OVERHEAD if self.on else 0


def overhead(encrypt: Encrypt | None) -> int:
    """The bytes the layers above the fragment layer add to a packet (encryption's)."""
    return OVERHEAD if encrypt is not None else 0


def check_compress(mode: str, *, fragmenting: bool, encrypting: bool, keepalive: bool) -> None:
    """ConfigError when `mode` cannot share the link with the other layers asked for: VJ's
    frame types (0x70-0xFF) overlap theirs, so a `vj` link carries only IP and VJ frames."""
    if mode not in COMPRESS_MODES:
        raise ConfigError(f"--compress {mode!r}: choose one of {', '.join(COMPRESS_MODES)}")
    if mode != VJ:
        return
    others = [name for name, on in (
        ("fragmentation (a tunnel MTU above the link's, or --fragment always)", fragmenting),
        ("encryption (--private-key)", encrypting),
        ("keepalives (--keepalive)", keepalive)) if on]
    if others:
        raise ConfigError(f"--compress vj cannot share a link with {' or '.join(others)}: "
                          "VJ's frame types (0x70-0xFF) overlap theirs; use --compress auto")


def fragment_frame_size(mode: str, tunnel_mtu: int, link_mtu: int | None,
                        foreign: str | None = None) -> int | None:
    """Whether the layer is needed: None for no layer, else the frame size to split to.

    `auto` adds it when the tunnel MTU exceeds the link's; `always` adds it in any case (with
    no link MTU it then only reassembles what the peer fragments); `never` leaves it out.
    Raises ConfigError when the tunnel MTU cannot be carried in the link's frames, and when it
    exceeds them toward a `foreign` peer (Link.foreign_peer: one that reads no fragments)
    unless `always` says the peer is linkbridge after all.
    """
    if foreign and mode != "always" and link_mtu and tunnel_mtu > link_mtu:
        raise ConfigError(
            f"tunnel MTU {tunnel_mtu} is above the link's MTU {link_mtu}, and the peer, "
            f"{foreign}, cannot reassemble linkbridge's fragments: give --mtu {link_mtu} (or "
            "the same larger link mtu= on both sides), or --fragment always if the peer is "
            "linkbridge")
    if mode == "never" or (mode == "auto" and (link_mtu is None or tunnel_mtu <= link_mtu)):
        return None
    size = link_mtu or 0
    if link_mtu is not None:
        check_frame_size(link_mtu, tunnel_mtu)
    return size


def offload_frame_size(offload: Offload, *, link: bool, link_mtu: int | None, tunnel_mtu: int,
                       encrypting: bool, compress: str, capture: bool,
                       fragment: str) -> int | None:
    """The frame size the offload layer chunks to (the link's MTU less what `encrypting` adds
    to each chunk, else the tunnel's MTU), or None when the layer is off, or auto and another
    layer excludes it; ConfigError for `on` with such a layer (docs/offload.md says which
    layers switch it off). `link`: a link below, not local ports."""
    if offload.mode == "off":
        return None
    extra = OVERHEAD if encrypting else 0
    frame = link_mtu - extra if link_mtu else tunnel_mtu
    excluded = [why for present, why in (
        (not link, "local ports (--rx/--tx)"), (compress != OFF, "--compress"),
        (capture, "--pcap"), (fragment == "always", "--fragment always"),
        (frame < MIN_FRAME_SIZE, f"link frames under {MIN_FRAME_SIZE + extra} bytes"
                                 + (" with encryption" if encrypting else ""))) if present]
    try:
        offload_attempts(offload.flags)
    except ValueError as exc:
        raise ConfigError(f"--offload-flags: {exc}") from None
    if not excluded:
        return frame
    if offload.mode == "on":
        raise ConfigError(f"--offload on cannot run with {excluded[0]} (docs/offload.md); "
                          "--offload auto leaves it off instead")
    return None
