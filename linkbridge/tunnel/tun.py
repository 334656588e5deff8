"""A userspace TUN device (IFF_TUN | IFF_NO_PI) as a packet endpoint."""

from __future__ import annotations

import errno
import os

import pytun

from linkbridge.datapath.batch import READ_SIZE, BatchReader
from linkbridge.datapath.counters import Counters
from linkbridge.datapath.rawport import DevicePort
from linkbridge.errors import TunnelError

AUTO_NAME = "lb%d"  # the kernel picks the first free index: no counting of existing devices
MAX_IFNAME = 15


class TunEndpoint:
    """Owns a TUN device; it disappears (with its addresses and routes) when closed."""

    def __init__(self, name: str | None = None) -> None:
        requested = name or AUTO_NAME
        if len(requested) > MAX_IFNAME:
            raise TunnelError(f"device name {requested!r} is longer than {MAX_IFNAME} characters")
        try:
            self._dev = pytun.TunTapDevice(
                name=requested, flags=pytun.IFF_TUN | pytun.IFF_NO_PI
            )
        except pytun.Error as exc:
            raise TunnelError(_tun_error(requested, exc)) from None
        self.name: str = self._dev.name
        self.counters = Counters()
        self._fd: int = self._dev.fileno()
        os.set_blocking(self._fd, False)
        self._reader = BatchReader(self._fd, self._read_one)
        self._port = DevicePort(self._fd, self.counters, READ_SIZE)
        self._closed = False

    def _read_one(self, packets: list[bytes]) -> None:
        packet = os.read(self._fd, READ_SIZE)
        self.counters.received(len(packet))
        packets.append(packet)

    def fileno(self) -> int:
        """The device's descriptor, for waiting on it (the data path polls it)."""
        return self._fd

    def raw_port(self) -> DevicePort:
        """The device for the data path's lean loop, which moves packets as receive()/send()
        would."""
        return self._port

    def receive(self, timeout: float) -> list[bytes]:
        return self._reader.receive(timeout)

    def send(self, packet: bytes) -> None:
        self._port.write(packet)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._dev.close()


def _tun_error(name: str, exc: pytun.Error) -> str:
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    if code in (errno.EPERM, errno.EACCES):
        return "cannot create a TUN device: permission denied (needs CAP_NET_ADMIN; run as root)"
    if code == errno.ENOENT:
        return "cannot create a TUN device: /dev/net/tun is missing (load the tun module)"
    if code in (errno.EBUSY, errno.EINVAL, errno.EEXIST):
        return f"cannot create TUN device {name!r}: the name is in use by another device"
    return f"cannot create TUN device {name!r}: {exc}"
