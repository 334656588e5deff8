"""A userspace TUN device (IFF_TUN | IFF_NO_PI) as a packet endpoint, optionally with a
virtio_net_hdr before every packet (IFF_VNET_HDR) and kernel offloads (docs/offload.md)."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
from collections.abc import Callable, Sequence

import pytun

from linkbridge.datapath.batch import READ_SIZE, BatchReader
from linkbridge.datapath.counters import Counters
from linkbridge.datapath.rawport import DevicePort
from linkbridge.errors import TunnelError
from linkbridge.wire.offload import OFFLOAD_ATTEMPTS, VNET_HDR_LEN, flag_names

log = logging.getLogger(__name__)

AUTO_NAME = "lb%d"  # the kernel picks the first free index: no counting of existing devices
MAX_IFNAME = 15
TUNSETOFFLOAD = 0x400454D0  # _IOW('T', 208, unsigned int)


class TunEndpoint:
    """Owns a TUN device; it disappears (with its addresses and routes) when closed.

    With `vnet_hdr` every read and write carries a virtio_net_hdr before the packet; the
    offloads the kernel accepts (the first of `attempts` it takes, `accepted`) are found out at
    once and left off until set_offload() turns them on.
    """

    def __init__(self, name: str | None = None, vnet_hdr: bool = False,
                 attempts: Sequence[int] = OFFLOAD_ATTEMPTS) -> None:
        requested = name or AUTO_NAME
        if len(requested) > MAX_IFNAME:
            raise TunnelError(f"device name {requested!r} is longer than {MAX_IFNAME} characters")
        flags = pytun.IFF_TUN | pytun.IFF_NO_PI | (pytun.IFF_VNET_HDR if vnet_hdr else 0)
        try:
            self._dev = pytun.TunTapDevice(name=requested, flags=flags)
        except pytun.Error as exc:
            raise TunnelError(_tun_error(requested, exc)) from None
        self.name: str = self._dev.name
        self.counters = Counters()
        self._fd: int = self._dev.fileno()
        self.vnet_hdr = vnet_hdr
        self.read_size = READ_SIZE + VNET_HDR_LEN if vnet_hdr else READ_SIZE
        self.accepted = self._probe_offloads(attempts) if vnet_hdr else 0
        os.set_blocking(self._fd, False)
        self._reader = BatchReader(self._fd, self._read_one)
        self._port = DevicePort(self._fd, self.counters, READ_SIZE)
        # send(packet) is the port's write itself: a packet into the device takes one Python
        # call, not two (docs/performance.md, "One harness for both trees")
        self.send: Callable[[bytes], None] = self._port.write
        self._closed = False

    def _probe_offloads(self, attempts: Sequence[int]) -> int:
        """The first offload set of `attempts` the kernel accepts (0: none), left off."""
        for flags in attempts:
            try:
                self.set_offload(flags)
            except OSError as exc:
                log.debug("%s: kernel refuses offloads %s: %s", self.name, flag_names(flags),
                          exc.strerror)
                continue
            self.set_offload(0)
            return flags
        log.info("%s: the kernel refuses TUN offloads: offload off", self.name)
        return 0

    def set_offload(self, flags: int) -> None:
        """Ask the kernel for the offloads `flags` (TUN_F_*); OSError when it refuses them."""
        fcntl.ioctl(self._fd, TUNSETOFFLOAD, flags)

    def _read_one(self, packets: list[bytes]) -> None:
        packet = os.read(self._fd, self.read_size)
        counters = self.counters  # received() written out: this runs for every packet read
        counters.rx_packets += 1
        counters.rx_bytes += len(packet)
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
