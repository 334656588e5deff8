"""A KISS hub: one shared channel for many `kiss:` stations on ptys (`lab --stations N --link
kiss:?mode=ax25`, docs/kiss.md "A hub for the lab").

`python -m linkbridge_kiss.hub --dir DIR [--baud N] NAME...` makes one raw pty per station,
its slave at DIR/NAME, and forwards every whole KISS frame one station writes to all the
others, as a radio channel would (no decoding: the stations' AX.25 or Ethernet addresses say
whom a frame is for). With `--baud` the channel carries one frame at a time at that line
rate (8N1). It prints `ready` when the ptys are there (its pid in DIR/hub.pid), writes its
counters as JSON to DIR/stats.json on SIGUSR1 and at exit, and stops on SIGTERM or SIGINT,
removing the ptys. `FrameSplitter` and `Channel` are its pure parts; hublab.py runs it for
the lab.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import signal
import sys
import time
import tty
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

from linkbridge.plugin.codecs import kiss
from linkbridge.plugin.lab import SERIAL_BITS_PER_BYTE
from linkbridge_kiss.hublab import PID_FILE, STATS_FILE

FEND = bytes([kiss.FEND])
MAX_FRAME = 64 * 1024  # longer "frames" are noise, never forwarded
READ_SIZE = 65536


class FrameSplitter:
    """Cuts whole KISS frames (FEND, the escaped bytes, FEND) out of one station's byte
    stream, without decoding them. Bytes before the first FEND, empty frames and frames
    longer than `max_size` are dropped, the last two counted in `dropped`."""

    def __init__(self, max_size: int = MAX_FRAME) -> None:
        self.max_size = max_size
        self.dropped = 0
        self._frame: bytearray | None = None  # None: not inside a frame (start, or too long)

    def feed(self, data: bytes) -> list[bytes]:
        frames = []
        for index, part in enumerate(data.split(FEND)):
            if index:  # a FEND ends the frame so far and opens the next
                if self._frame:
                    frames.append(FEND + bytes(self._frame) + FEND)
                self._frame = bytearray()
            if self._frame is None:
                continue
            self._frame += part
            if len(self._frame) > self.max_size:
                self._frame = None
                self.dropped += 1
        return frames


class Channel:
    """When a frame put on the shared channel at `now` has been heard: at once without a
    `rate` (bytes/s), else after the frames before it and its own time on the line."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self.free_at = 0.0

    def heard_at(self, now: float, size: int) -> float:
        if not self.rate:
            return now
        self.free_at = max(self.free_at, now) + size / self.rate
        return self.free_at


@dataclass
class StationCounters:
    """One station's figures at the hub."""

    frames_in: int = 0
    bytes_in: int = 0
    frames_out: int = 0  # frames of the others written to it
    lost: int = 0  # frames that found no room in its pty (it was not reading)
    dropped: int = 0  # frames too long to be any station's


class HubPty:
    """A raw pty whose slave is at `path`; the hub keeps a slave descriptor open so that the
    master never reads EIO while the station has not opened it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.master, self._keeper = os.openpty()
        tty.setraw(self._keeper)
        os.set_blocking(self.master, False)
        os.symlink(os.ttyname(self._keeper), path)

    def write(self, frame: bytes) -> bool:
        """Write `frame` whole; False when the station's pty had no room for it all."""
        try:
            return os.write(self.master, frame) == len(frame)
        except OSError:  # full (BlockingIOError) or gone
            return False

    def close(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self.master)
        os.close(self._keeper)


class Hub:
    """The stations' ptys in `directory`, and the loop that forwards frames between them."""

    def __init__(self, directory: str, names: Sequence[str], baud: int | None) -> None:
        self.directory = directory
        self.names = list(names)
        self.counters = {name: StationCounters() for name in names}
        self.channel = Channel(baud / SERIAL_BITS_PER_BYTE if baud else None)
        self.ptys: dict[str, HubPty] = {}
        self._splitters = {name: FrameSplitter() for name in names}
        self._on_air: deque[tuple[float, str, bytes]] = deque()  # (heard at, sender, frame)
        self._stop = self._stats_wanted = False

    @contextlib.contextmanager
    def opened(self) -> Iterator[Hub]:
        try:
            for name in self.names:
                self.ptys[name] = HubPty(os.path.join(self.directory, name))
            yield self
        finally:
            for pty in self.ptys.values():
                pty.close()
            self.write_stats()

    def write_stats(self) -> None:
        path = os.path.join(self.directory, STATS_FILE)
        with open(f"{path}.new", "w") as out:
            json.dump({name: asdict(c) for name, c in self.counters.items()}, out)
        os.replace(f"{path}.new", path)

    def take(self, name: str) -> None:
        """Read what station `name` wrote and put its whole frames on the channel."""
        try:
            data = os.read(self.ptys[name].master, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        counters, splitter = self.counters[name], self._splitters[name]
        for frame in splitter.feed(data):
            counters.frames_in += 1
            counters.bytes_in += len(frame)
            self._on_air.append((self.channel.heard_at(time.monotonic(), len(frame)), name,
                                 frame))
        counters.dropped = splitter.dropped

    def deliver(self) -> float | None:
        """Give every frame the channel has carried by now to all stations but its sender;
        return the seconds until the next one is heard (None: nothing on the air)."""
        while self._on_air:
            heard_at, sender, frame = self._on_air[0]
            wait = heard_at - time.monotonic()
            if wait > 0:
                return wait
            self._on_air.popleft()
            for name, pty in self.ptys.items():
                if name != sender:
                    written = pty.write(frame)
                    self.counters[name].frames_out += written
                    self.counters[name].lost += not written
        return None

    def _signalled(self, number: int, _frame: object) -> None:
        if number == signal.SIGUSR1:
            self._stats_wanted = True
        else:
            self._stop = True

    def run(self, wake: int) -> None:
        """Forward until SIGTERM or SIGINT; `wake` is the signal wake-up descriptor."""
        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
            signal.signal(number, self._signalled)
        poller = select.poll()
        by_fd = {pty.master: name for name, pty in self.ptys.items()}
        for fd in (*by_fd, wake):
            poller.register(fd, select.POLLIN)
        with open(os.path.join(self.directory, PID_FILE), "w") as out:
            out.write(str(os.getpid()))
        print("ready", flush=True)
        while not self._stop:
            wait = self.deliver()
            for fd, _events in poller.poll(None if wait is None else wait * 1000):
                if fd == wake:
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake, 64)
                else:
                    self.take(by_fd[fd])
            if self._stats_wanted:
                self._stats_wanted = False
                self.write_stats()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m linkbridge_kiss.hub",
                                     description="A shared KISS channel between station ptys.")
    parser.add_argument("--dir", required=True, help="where the stations' ptys appear")
    parser.add_argument("--baud", type=int, default=None,
                        help="the channel's line rate, one frame at a time (default: none)")
    parser.add_argument("names", nargs="+", help="the stations: DIR/NAME each")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.dir):
        print(f"kiss hub: no directory {args.dir}", file=sys.stderr)
        return 2
    read, write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(write)
    try:
        with Hub(args.dir, args.names, args.baud).opened() as hub:
            hub.run(read)
    except OSError as exc:
        print(f"kiss hub: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
