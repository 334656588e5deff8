"""The lab's options, and the `linkbridge up` options they give its two tunnels: the layers a
user would try (compression, encryption with keys made for the run, offloads, fragmentation),
checked before anything is set up."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from linkbridge.datapath.encrypting import AUTO
from linkbridge.datapath.pipeline import DEFAULT_MTU
from linkbridge.errors import ConfigError
from linkbridge.lab.links import LinkEvent, parse_events
from linkbridge.ops.keys import new_private_key, public_key_of
from linkbridge.wire.compress import OFF, VJ
from linkbridge.wire.stack import Offload, check_compress, offload_frame_size

SideArgs = tuple[Sequence[str], Sequence[str]]  # options of side A's and side B's own
KEY_FILES = ("a.key", "b.key")


@dataclass(frozen=True)
class LabOptions:
    """What `linkbridge lab` was asked for. None for a tunnel option: `up`'s default."""

    link: str = "udp"
    via: tuple[str, ...] = ()
    mtu: int | None = None
    count: int = 20
    interval: float = 0.05
    transfer_bytes: int | None = None  # None: chosen by the lab, sized to a slow link
    transfer_time: float | None = None  # seconds the TCP transfer may take at most
    ipv6: bool = False
    plot: str | None = None  # SVG file: RTT and throughput over time
    plot_data: str | None = None  # JSON file: the same series
    compress: str = OFF  # --compress of both tunnels
    queue: str | None = None  # --queue of both tunnels
    queue_rate: float | None = None
    queue_limit: int | None = None
    encrypt: bool = False  # both tunnels encrypt, with keys made for the run
    cipher: str | None = None
    offload: str | None = None
    offload_flags: str | None = None
    fragment: str | None = None
    fragment_timeout: float | None = None
    repair: str = "off"  # --repair of both tunnels
    verbose: int = 0  # -v count: the tunnels run with it and their lines are logged
    more_links: tuple[str, ...] = ()  # --link repeated: each over a veth pair of its own
    link_policy: str | None = None  # the tunnels' multi-link options (docs/multilink.md)
    hold_time: float | None = None
    reorder_wait: float | None = None
    keepalive: float | None = None
    fail_link: tuple[str, ...] = ()  # N@SECONDS: cut link N that long after the pings start
    restore_link: tuple[str, ...] = ()

    def check(self) -> None:
        """ConfigError for options that cannot go together, before the lab sets anything up
        (the tunnels check the rest, which needs the link's MTU, when they start)."""
        if self.transfer_bytes is not None and self.transfer_bytes < 0:
            raise ConfigError(f"--bytes {self.transfer_bytes}: give a number of bytes >= 0")
        if self.transfer_time is not None and not self.transfer_time > 0:
            raise ConfigError(f"--transfer-time {self.transfer_time:g}: give seconds above 0")
        if self.cipher not in (None, AUTO) and not self.encrypt:
            raise ConfigError(f"--cipher {self.cipher} needs --encrypt")
        self.link_events()
        check_compress(self.compress, fragmenting=self.fragment == "always",
                       encrypting=self.encrypt, keepalive=False)
        if self.offload is not None:
            offload_frame_size(Offload(self.offload, self.offload_flags or ""), link=True,
                               link_mtu=None, tunnel_mtu=self.mtu or DEFAULT_MTU,
                               encrypting=self.encrypt, compress=self.compress, capture=False,
                               fragment=self.fragment or "auto")

    def link_events(self) -> list[LinkEvent]:
        """--fail-link and --restore-link, in time order (ConfigError for a bad one)."""
        return parse_events(self.fail_link, self.restore_link, 1 + len(self.more_links))

    @property
    def vj_timestamps_off(self) -> bool:
        """Whether the lab turns TCP timestamps off in its hosts: VJ compresses only TCP
        without options, and Linux puts a timestamp option in every segment."""
        return self.compress == VJ

    def tunnel_args(self) -> list[str]:
        """The `up` options both tunnels get."""
        given = (("--compress", self.compress if self.compress != OFF else None),
                 ("--queue", self.queue), ("--queue-rate", self.queue_rate),
                 ("--queue-limit", None if self.queue_limit is None else str(self.queue_limit)),
                 ("--fragment", self.fragment), ("--fragment-timeout", self.fragment_timeout),
                 ("--offload", self.offload), ("--offload-flags", self.offload_flags or None),
                 ("--cipher", self.cipher if self.encrypt else None),
                 ("--repair", self.repair if self.repair != "off" else None),
                 ("--keepalive", self.keepalive),
                 *((("--link-policy", self.link_policy), ("--hold-time", self.hold_time),
                    ("--reorder-wait", self.reorder_wait)) if self.more_links else ()))
        return [word for flag, value in given if value is not None
                for word in (flag, f"{value:g}" if isinstance(value, float) else value)]


@contextlib.contextmanager
def key_args(encrypt: bool) -> Iterator[SideArgs]:
    """Each side's encryption options with a new key pair for the run, in files only the
    owner reads, removed on exit (no options and no files without `encrypt`)."""
    if not encrypt:
        yield (), ()
        return
    keys = [new_private_key() for _ in KEY_FILES]
    with tempfile.TemporaryDirectory(prefix="lb-lab-keys-") as directory:
        paths = [os.path.join(directory, name) for name in KEY_FILES]
        for path, key in zip(paths, keys, strict=True):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as file:
                file.write(key + "\n")
        yield (["--private-key", paths[0], "--peer-public-key", public_key_of(keys[1])],
               ["--private-key", paths[1], "--peer-public-key", public_key_of(keys[0])])
