"""A thread that sends hand-made IPv4 datagrams (spoofed sources) from a namespace's raw
socket while a test's block runs: the handshake floods' sender."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

from linkbridge.lab import netns

Sender = Callable[[socket.socket, threading.Event, list[int]], None]


@contextlib.contextmanager
def raw_sending(namespace: str, send: Sender) -> Iterator[list[int]]:
    """Run `send(raw, done, sent)` in a thread, with a raw IPv4 socket made in `namespace`,
    until the block ends (then `done` is set); yields `sent`, the count `send` keeps."""
    with netns.inside(namespace):
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    sent = [0]
    done = threading.Event()
    sender = threading.Thread(target=send, args=(raw, done, sent), name="flood")
    sender.start()
    try:
        yield sent
    finally:
        done.set()
        sender.join()
        raw.close()
