"""Interface MTU, state, addresses and routes through pyroute2 netlink, each step undoable."""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import time
from collections.abc import Callable, Iterator, Mapping

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl.ifaddrmsg import IFA_F_NODAD

from linkbridge.errors import TunnelError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
Undo = Callable[[], None]
ADDR_GEN_MODE_NONE = 1  # <linux/if_link.h> IN6_ADDR_GEN_MODE_NONE
RTN_LOCAL = 2  # <linux/rtnetlink.h>: a route to one of this host's own addresses
ADDRESS_READY_S = 5.0  # how long the kernel may take to make a new IPv6 address usable


@contextlib.contextmanager
def netlink_step(what: str) -> Iterator[None]:
    """Turn a netlink failure during `what` into a one-line TunnelError."""
    try:
        yield
    except NetlinkError as exc:
        raise TunnelError(f"{what} failed: {exc.args[1] if len(exc.args) > 1 else exc}") from None


class InterfaceConfig:
    """Configure one interface by name; every change returns the callable that reverts it."""

    def __init__(self, ipr: IPRoute, ifname: str) -> None:
        self.ipr = ipr
        self.ifname = ifname
        found = ipr.link_lookup(ifname=ifname)
        if not found:
            raise TunnelError(f"interface {ifname!r} does not exist")
        self.index: int = found[0]

    def set_mtu(self, mtu: int) -> None:
        with netlink_step(f"setting MTU {mtu} on {self.ifname}"):
            self.ipr.link("set", index=self.index, mtu=mtu)

    def limit_super_packets(self, size: int) -> bool:
        """Have the kernel hand out (TCP) super-packets of at most `size` bytes (the device's
        gso_max_size); False when the kernel refuses to change it."""
        try:
            self.ipr.link("set", index=self.index, gso_max_size=size)
        except NetlinkError:
            return False
        return True

    def own_link_local_only(self) -> None:
        """No link-local address of the kernel's making when the device goes up (its
        IPv6 address generation mode `none`): the configured one is the only one, so a peer
        can own it (docs/multipoint.md, "IPv6 link-local and multicast")."""
        spec = {"attrs": [["AF_INET6", {"attrs": [["IFLA_INET6_ADDR_GEN_MODE",
                                                     ADDR_GEN_MODE_NONE]]}]]}
        with netlink_step(f"turning off {self.ifname}'s own link-local address"):
            self.ipr.link("set", index=self.index, IFLA_AF_SPEC=spec)

    def set_up(self) -> None:
        with netlink_step(f"bringing {self.ifname} up"):
            self.ipr.link("set", index=self.index, state="up")

    def add_address(self, interface: IPInterface) -> Undo:
        """Add `interface` and return once it is usable. An IPv6 address goes in without
        duplicate address detection (IFA_F_NODAD; a device without neighbour discovery, TUN or
        ipip, skips it anyway), yet the kernel makes it usable only in a work item after the
        add (it is tentative until then, or with NODAD has no local route yet): a packet to it
        is dropped until that has run, which can take several ms on a loaded machine. So this
        waits for the address's local route."""
        address, prefix = str(interface.ip), interface.network.prefixlen
        flags = {"flags": IFA_F_NODAD} if interface.version == 6 else {}
        with netlink_step(f"adding address {interface} to {self.ifname}"):
            self.ipr.addr("add", index=self.index, address=address, prefixlen=prefix, **flags)
        undo = functools.partial(self._quietly, "del", self.ipr.addr, index=self.index,
                                 address=address, prefixlen=prefix)
        if interface.version == 6 and not self._await_local_route(address):
            undo()
            raise TunnelError(f"the kernel did not make address {interface} on {self.ifname} "
                              f"usable within {ADDRESS_READY_S:g} s")
        return undo

    def _await_local_route(self, address: str) -> bool:
        """Wait until the kernel routes `address` as one of its own (at most ADDRESS_READY_S)."""
        deadline = time.monotonic() + ADDRESS_READY_S
        pause = 0.0005
        while True:
            try:
                if any(msg["type"] == RTN_LOCAL for msg in self.ipr.route("get", dst=address)):
                    return True
            except NetlinkError:
                pass  # no route to it at all yet (a /128 address has no prefix route)
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def add_route(self, network: IPNetwork, metrics: Mapping[str, int] | None = None) -> Undo:
        """Route `network` to the interface, with route `metrics` (RTAX_* by pyroute2's
        names, e.g. rto_min, initcwnd) when given."""
        dst = str(network)
        extra = {"metrics": dict(metrics)} if metrics else {}
        with netlink_step(f"adding route to {dst} via {self.ifname}"):
            self.ipr.route("add", dst=dst, oif=self.index, **extra)
        return lambda: self.remove_route(network)

    def remove_route(self, network: IPNetwork) -> None:
        """Take the route to `network` off the interface (gone already is fine)."""
        self._quietly("del", self.ipr.route, dst=str(network), oif=self.index)

    @staticmethod
    def _quietly(command: str, call: Callable[..., object], **kwargs: object) -> None:
        """Undo a step; the object may already be gone with its device, which is fine."""
        with contextlib.suppress(NetlinkError):
            call(command, **kwargs)

