"""Serial lines without hardware: pty pairs joined like a null-modem cable, paced at a baud rate.

A `PtyEnd` is a kernel pty whose slave side is reachable at a stable symlink path; unplugging it
closes the pty (a program using it sees the device vanish) and removes the path, replugging makes
a fresh pty at the same path. A `UartCable` joins two ends with one relay thread per direction
that releases bytes at baud/10 per second, as an 8N1 UART would, optionally inserting line noise
between SLIP frames. A bare pty moves megabytes per second whatever its "baud rate"; the cable is
what gives tests and `linkbridge lab --link serial` real-line timing.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import select
import shutil
import tempfile
import threading
import time
import tty
from collections.abc import Iterator
from dataclasses import dataclass

from linkbridge.framing.slip import END
from linkbridge.plugin.lab import SERIAL_BITS_PER_BYTE

CHUNK_TIME = 0.004  # seconds of line time the relay moves per step
CATCH_UP = 0.05  # seconds a late relay may make up by releasing a backlog faster
IDLE_WAIT = 0.05  # seconds a relay waits for input before it looks at its stop flag


class PtyEnd:
    """One end of a cable: a raw pty whose slave is at `path` while plugged in.

    The end keeps a slave descriptor of its own open, so the pty stays raw and the master never
    reads EIO while no program has the path open.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.master: int | None = None
        self._keeper: int | None = None

    @property
    def plugged(self) -> bool:
        return self.master is not None

    def plug(self) -> None:
        """Create a fresh raw pty and point `path` at its slave."""
        if self.master is not None:
            return
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        temporary = f"{self.path}.new"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        os.symlink(os.ttyname(slave), temporary)
        os.replace(temporary, self.path)
        self.master, self._keeper = master, slave

    def unplug(self) -> None:
        """Remove `path` and close the pty: its user sees a hang-up, then the device is gone."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        for fd in (self.master, self._keeper):
            if fd is not None:
                os.close(fd)
        self.master = self._keeper = None


@dataclass
class LineStats:
    """What one direction of a cable carried."""

    carried: int = 0  # bytes delivered to the far end
    garbage: int = 0  # noise bytes inserted
    lost: int = 0  # bytes dropped: far end unplugged or not reading (overrun)


class LinePacer:
    """When bytes put on a line at `rate` bytes/s have arrived at the far end. Pure logic."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.free_at = 0.0  # when the line finishes what it was given so far

    def release_time(self, now: float, size: int, waiting: bool) -> float:
        """Arrival time of `size` bytes taken off the sender at `now`.

        `waiting` says the bytes were already queued (no wait for input preceded them): the line
        then sends them back to back with the previous ones, making up for a late relay by at
        most CATCH_UP seconds, so the long-run rate stays exact.
        """
        start = max(self.free_at, now - CATCH_UP) if waiting else max(self.free_at, now)
        self.free_at = start + size / self.rate
        return self.free_at


class NoiseInjector:
    """Inserts random bytes between SLIP frames (at an END END boundary). Pure, seeded."""

    def __init__(self, rng: random.Random, probability: float, max_length: int = 16) -> None:
        self.rng = rng
        self.probability = probability
        self.max_length = max_length
        self._last = -1  # the last byte passed on, across chunks

    def noise(self) -> bytes:
        length = self.rng.randint(1, self.max_length)
        return bytes(self.rng.getrandbits(8) for _ in range(length))

    def apply(self, chunk: bytes) -> tuple[bytes, int]:
        """`chunk` with noise inserted at some frame gaps, and how many noise bytes that was."""
        if not chunk:
            return chunk, 0
        pieces: list[bytes] = []
        added = 0
        start = 0
        previous = self._last
        for index, byte in enumerate(chunk):
            if byte == END and previous == END and self.rng.random() < self.probability:
                noise = self.noise()
                pieces += (chunk[start:index], noise)
                added += len(noise)
                start = index
            previous = byte
        pieces.append(chunk[start:])
        self._last = chunk[-1]
        return b"".join(pieces), added


class UartCable:
    """Two pty ends joined like a null-modem cable at `baud` (None: as fast as the ptys go).

    `noise` (probability per frame gap) inserts random bytes between frames, seeded by `seed`.
    The slave paths are `path_a` and `path_b`; `unplug(side)` / `replug(side)` simulate pulling
    a USB adapter out and back in. Use as a context manager; everything goes on exit.
    """

    def __init__(self, baud: int | None = 115200, directory: str | None = None,
                 noise: float = 0.0, seed: int = 0) -> None:
        self.baud = baud
        self._own_directory = directory is None
        self.directory = directory or tempfile.mkdtemp(prefix="lb-uart-")
        self.ends = {side: PtyEnd(os.path.join(self.directory, f"tty{side.upper()}"))
                     for side in ("a", "b")}
        self.stats = {"a": LineStats(), "b": LineStats()}  # keyed by the sending side
        self._noise = noise
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def path_a(self) -> str:
        return self.ends["a"].path

    @property
    def path_b(self) -> str:
        return self.ends["b"].path

    def start(self) -> None:
        for end in self.ends.values():
            end.plug()
        for sender, receiver in (("a", "b"), ("b", "a")):
            injector = (NoiseInjector(random.Random(self._rng.getrandbits(64)), self._noise)
                        if self._noise else None)
            thread = threading.Thread(target=self._relay, args=(sender, receiver, injector),
                                      name=f"uart-{sender}{receiver}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        with self._lock:
            for end in self.ends.values():
                end.unplug()
        if self._own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def unplug(self, side: str) -> None:
        with self._lock:
            self.ends[side].unplug()

    def replug(self, side: str) -> None:
        with self._lock:
            self.ends[side].plug()

    def __enter__(self) -> UartCable:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _relay(self, sender: str, receiver: str, injector: NoiseInjector | None) -> None:
        rate = self.baud / SERIAL_BITS_PER_BYTE if self.baud else None
        pacer = LinePacer(rate) if rate else None
        chunk_size = max(16, int(rate * CHUNK_TIME)) if rate else 65536
        stats = self.stats[sender]
        waiting = False
        while not self._stop.is_set():
            chunk = self._take(sender, chunk_size)
            if not chunk:
                self._wait_for_input(sender)
                waiting = False
                continue
            if pacer is not None:
                release = pacer.release_time(time.monotonic(), len(chunk), waiting)
                delay = release - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            waiting = True
            if injector is not None:
                chunk, added = injector.apply(chunk)
                stats.garbage += added
            self._give(receiver, chunk, stats)

    def _take(self, side: str, size: int) -> bytes:
        with self._lock:
            master = self.ends[side].master
            if master is None:
                return b""
            try:
                return os.read(master, size)
            except BlockingIOError:
                return b""
            except OSError as exc:
                if exc.errno == errno.EIO:  # no slave open right now
                    return b""
                raise

    def _wait_for_input(self, side: str) -> None:
        master = self.ends[side].master
        if master is None:
            self._stop.wait(IDLE_WAIT)
            return
        poller = select.poll()
        poller.register(master, select.POLLIN)
        events = poller.poll(IDLE_WAIT * 1000)
        if any(flags & (select.POLLHUP | select.POLLERR | select.POLLNVAL)
               for _fd, flags in events):
            self._stop.wait(IDLE_WAIT)  # closed under us (unplugged): look again shortly

    def _give(self, side: str, data: bytes, stats: LineStats) -> None:
        with self._lock:
            master = self.ends[side].master
            written = 0
            if master is not None:
                with contextlib.suppress(BlockingIOError, OSError):
                    while written < len(data):
                        written += os.write(master, data[written:])
        stats.carried += written
        stats.lost += len(data) - written


@contextlib.contextmanager
def uart_cable(baud: int | None = 115200, noise: float = 0.0,
               seed: int = 0) -> Iterator[UartCable]:
    """A started UartCable, stopped (ptys closed, paths removed) on exit."""
    with UartCable(baud, noise=noise, seed=seed) as cable:
        yield cable


@contextlib.contextmanager
def cable_paths(baud: int) -> Iterator[tuple[str, str]]:
    """The lab's serial cable (LabSides.serial_cable): a paced UartCable's two pty paths."""
    with UartCable(baud) as cable:
        yield cable.path_a, cable.path_b
