"""The data path: one thread per direction moving packets between two endpoints."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from linkbridge.endpoint import Endpoint
from linkbridge.errors import LinkbridgeError
from linkbridge.packet import packet_problem

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.2  # seconds a pump waits before it looks at the stop flag again
Check = Callable[[bytes], str | None]


class Bridge:
    """Joins the tunnel side (a TUN device, or local ports feeding a tunnel) to the link side.

    Every packet travelling towards the tunnel is checked first; malformed ones are counted as
    drops on the link side. A fatal error in either direction stops both and is re-raised by run().
    """

    def __init__(self, tunnel_side: Endpoint, link_side: Endpoint,
                 check: Check = packet_problem) -> None:
        self.tunnel_side = tunnel_side
        self.link_side = link_side
        self.stop = threading.Event()
        self._error: LinkbridgeError | None = None
        self._threads = [
            threading.Thread(target=self._pump, args=(tunnel_side, link_side, None),
                             name="to-link", daemon=True),
            threading.Thread(target=self._pump, args=(link_side, tunnel_side, check),
                             name="to-tunnel", daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def wait(self) -> None:
        """Block until stopped (by close() or a fatal error); re-raise a fatal error."""
        while not self.stop.wait(0.5):
            pass
        self.close()
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        self.stop.set()
        for thread in self._threads:
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join()

    def _pump(self, source: Endpoint, sink: Endpoint, check: Check | None) -> None:
        try:
            while not self.stop.is_set():
                for packet in source.receive(POLL_INTERVAL):
                    if check is not None:
                        problem = check(packet)
                        if problem is not None:
                            source.counters.drop(f"malformed_{problem}")
                            continue
                    sink.send(packet)
        except LinkbridgeError as exc:
            self._error = exc
        except Exception as exc:
            log.exception("unexpected error moving packets from %s to %s", source.name, sink.name)
            self._error = LinkbridgeError(f"{source.name} -> {sink.name}: {exc}")
        finally:
            self.stop.set()
