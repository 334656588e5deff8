"""Handshake work of many encrypt layers in one thread: a multipoint tunnel's peers share it,
so a hub with 100 encrypted peers runs one handshake thread, not 100 (docs/multipoint.md).

Each layer (datapath/encrypting.py) is a `HandshakeWork`: `handshake_step()` does its pending
handshake jobs (the Diffie-Hellman work, outside the layer's lock) and its timers, and says
when it wants the next step. The scheduler steps a layer when it was woken (the data path
queued handshake work) or when its time came, each in turn, so one peer's handshakes never
hold another's data path (that never waits for this thread) and cost a peer's handshakes no
more than the few hundred microseconds a Diffie-Hellman takes for another's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

TICK_INTERVAL = 1.0  # seconds between two steps of a layer whose timers ask for none sooner


class HandshakeWork(Protocol):
    """What the scheduler runs: one step of a layer's handshake work and timers, and the
    seconds until its next step is due."""

    def handshake_step(self) -> float: ...


class HandshakeScheduler:
    """One thread stepping every added layer when it is woken or due, until close()."""

    def __init__(self, name: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()  # the layers, the woken ones, the due times
        self._stepping = threading.Lock()  # held while a layer steps: remove() waits for it
        self._due: dict[HandshakeWork, float] = {}
        self._woken: set[HandshakeWork] = set()
        self._wake = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=f"{name} handshakes",
                                        daemon=True)
        self._thread.start()

    def add(self, layer: HandshakeWork) -> None:
        """Step `layer` from now on (at once, then as it asks)."""
        self.wake(layer)

    def wake(self, layer: HandshakeWork) -> None:
        """`layer` has handshake work: step it soon (the layer's lock may be held)."""
        with self._lock:
            self._woken.add(layer)
            self._due.setdefault(layer, 0.0)
        self._wake.set()

    def remove(self, layer: HandshakeWork) -> None:
        """Step `layer` no more; returns once a step of it in progress has ended."""
        with self._lock:
            self._due.pop(layer, None)
            self._woken.discard(layer)
        with self._stepping:
            pass

    def __len__(self) -> int:
        return len(self._due)

    def close(self) -> None:
        """Stop the thread (after the step in progress)."""
        self._stop = True
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        wait = 0.0
        while True:
            self._wake.wait(wait)
            self._wake.clear()
            if self._stop:
                return
            now = self._clock()
            with self._lock:
                ready = [layer for layer, due in self._due.items()
                         if due <= now or layer in self._woken]
                self._woken.clear()
            for layer in ready:
                with self._stepping:
                    with self._lock:
                        if layer not in self._due:  # removed meanwhile
                            continue
                    after = layer.handshake_step()
                with self._lock:
                    if layer in self._due:
                        self._due[layer] = self._clock() + after
            with self._lock:
                soonest = min(self._due.values(), default=now + TICK_INTERVAL)
                wait = 0.0 if self._woken else max(0.0, soonest - self._clock())
