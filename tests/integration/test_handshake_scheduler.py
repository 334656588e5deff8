"""The one handshake thread of a multipoint tunnel's peers (datapath/handshakes.py), with its
real thread: a woken layer steps soon, each layer at the time it asks for, a removed one no
more (remove() waits for its step in progress), and 100 layers share one thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from linkbridge.datapath.handshakes import HandshakeScheduler


class Layer:
    """Counts its steps; asks for the next one after `after` seconds; may block in a step."""

    def __init__(self, after: float = 10.0) -> None:
        self.after = after
        self.steps = 0
        self.threads: set[str] = set()
        self.gate = threading.Event()
        self.gate.set()
        self.stepping = threading.Event()

    def handshake_step(self) -> float:
        self.stepping.set()
        self.gate.wait()
        self.steps += 1
        self.threads.add(threading.current_thread().name)
        return self.after


def until(done: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline
        time.sleep(0.005)


def test_layers_step_when_woken_and_when_due_in_one_thread() -> None:
    scheduler = HandshakeScheduler("test")
    try:
        layers = [Layer() for _ in range(100)]
        for layer in layers:
            scheduler.add(layer)
        until(lambda: all(layer.steps == 1 for layer in layers))  # each at once when added
        scheduler.wake(layers[7])
        until(lambda: layers[7].steps == 2)
        assert sum(layer.steps for layer in layers) == 101  # only the woken one stepped
        assert set().union(*(layer.threads for layer in layers)) == {"test handshakes"}
        ticking = Layer(after=0.01)
        scheduler.add(ticking)
        until(lambda: ticking.steps >= 5)  # due again each 10 ms, unwoken
        assert len(scheduler) == 101
    finally:
        scheduler.close()


def test_remove_waits_for_the_step_in_progress_and_ends_the_steps() -> None:
    scheduler = HandshakeScheduler("test")
    try:
        layer = Layer(after=0.0)
        layer.gate.clear()
        scheduler.add(layer)
        layer.stepping.wait(5)
        removed = threading.Event()
        remover = threading.Thread(target=lambda: (scheduler.remove(layer), removed.set()))
        remover.start()
        assert not removed.wait(0.05)  # the step is still in progress
        layer.gate.set()
        remover.join(5)
        assert removed.is_set()
        steps = layer.steps
        other = Layer()
        scheduler.add(other)
        until(lambda: other.steps == 1)  # the thread went on, without the removed layer
        assert layer.steps == steps and len(scheduler) == 1
    finally:
        scheduler.close()
