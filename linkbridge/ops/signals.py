"""Turning SIGINT/SIGTERM into an exception that unwinds set-up or the running tunnel."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from linkbridge.errors import LinkbridgeError


class Shutdown(LinkbridgeError):
    """Raised in the main thread when SIGINT or SIGTERM arrives."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


HANDLED = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def shutdown_on_signals() -> Iterator[None]:
    """Raise Shutdown on the first SIGINT/SIGTERM; ignore further ones while tearing down.

    Once one has arrived they stay ignored after the block too: the process is on its way out,
    and a repeated signal must not kill it (exit status -15) after a clean teardown.
    """
    fired: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        for sig in HANDLED:
            signal.signal(sig, signal.SIG_IGN)
        fired.append(signum)
        raise Shutdown(signum)

    previous = {sig: signal.signal(sig, handler) for sig in HANDLED}
    try:
        yield
    finally:
        if not fired:
            for sig, old in previous.items():
                signal.signal(sig, old)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT/SIGTERM arriving in the block are handled when it ends, by the handler in force
    before it: for a step a Shutdown must not cut in two, such as starting a child process
    (raised inside Popen, after the fork, it loses the child's pid). Python runs signal
    handlers in the main thread only, so elsewhere this holds nothing and needs nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        held.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in HANDLED}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        if held:
            signal.raise_signal(held[0])


@contextlib.contextmanager
def reload_on_sighup() -> Iterator[threading.Event]:
    """An event that SIGHUP (`linkbridge reload`, systemd's ExecReload) sets while the block
    runs; whoever waits on it re-reads its configuration."""
    requested = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        requested.set()

    previous = signal.signal(signal.SIGHUP, handler)
    try:
        yield requested
    finally:
        signal.signal(signal.SIGHUP, previous)
