"""systemd's sd_notify protocol: tell a supervisor (or the lab) that the tunnel is ready."""

from __future__ import annotations

import os
import socket


def sd_notify(state: str) -> None:
    """Send `state` (e.g. "READY=1") to $NOTIFY_SOCKET when it is set; do nothing otherwise."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    address = "\0" + path[1:] if path.startswith("@") else path
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(state.encode(), address)
        except OSError:
            return  # a vanished supervisor must not take the tunnel down
