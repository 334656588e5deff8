"""A soft-TNC stand-in for tests: a TCP server that passes each client's bytes to every other
client, like two stations on one perfect radio channel behind a KISS TCP port (Direwolf's).

`stop()` closes the listening socket and every connection (the TNC went away); `start()` opens
the same port again. `received` keeps everything each connection sent, in order of arrival.
With `forked`, the relay runs in a child process (its sockets are not this process's
descriptors; `received` stays empty).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import threading
from collections.abc import Iterator

from linkbridge.lab import netns


class KissRelay:
    """Relays bytes between the TCP clients of HOST:PORT (a free port when 0)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, ns: str | None = None,
                 forked: bool = False) -> None:
        self.host, self.port, self.ns, self.forked = host, port, ns, forked
        self._pid: int | None = None
        self.received: list[bytes] = []  # one entry per connection, in order of connection
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> KissRelay:
        with netns.inside(self.ns) if self.ns else contextlib.nullcontext():
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(8)
        self.port = listener.getsockname()[1]
        self._stop.clear()
        if self.forked:
            self._pid = os.fork()
            if self._pid == 0:  # the child relays until it is killed
                try:
                    self._serve(listener)
                finally:
                    os._exit(0)
            listener.close()
            return self
        self._thread = threading.Thread(target=self._serve, args=(listener,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._pid is not None:
            os.kill(self._pid, signal.SIGKILL)
            os.waitpid(self._pid, 0)
            self._pid = None
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def connections(self) -> int:
        with self._lock:
            return len(self.received)

    def _serve(self, listener: socket.socket) -> None:
        clients: dict[int, tuple[socket.socket, int]] = {}  # fd -> (socket, index in received)
        poller = select.poll()
        poller.register(listener, select.POLLIN)
        try:
            while not self._stop.is_set():
                events = sorted(poller.poll(100), key=lambda event: event[0] != listener.fileno())
                for fd, _mask in events:  # accept first: a new client sees what follows
                    if fd == listener.fileno():
                        client, _address = listener.accept()
                        with self._lock:
                            self.received.append(b"")
                            clients[client.fileno()] = (client, len(self.received) - 1)
                        poller.register(client, select.POLLIN)
                        continue
                    if fd not in clients:
                        continue
                    client, index = clients[fd]
                    data = b""
                    with contextlib.suppress(OSError):
                        data = client.recv(65536)
                    if not data:
                        poller.unregister(fd)
                        del clients[fd]
                        client.close()
                        continue
                    with self._lock:
                        self.received[index] += data
                    for other, _index in list(clients.values()):
                        if other is not client:
                            with contextlib.suppress(OSError):
                                other.sendall(data)
        finally:
            for client, _index in clients.values():
                client.close()
            listener.close()

    def __enter__(self) -> KissRelay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def kiss_relay(host: str = "127.0.0.1", ns: str | None = None,
               forked: bool = False) -> Iterator[KissRelay]:
    with KissRelay(host, 0, ns, forked) as relay:
        yield relay
