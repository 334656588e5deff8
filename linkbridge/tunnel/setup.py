"""Setting up the userspace TUN tunnel: device, MTU, state, addresses and routes, with rollback."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pyroute2 import IPRoute

from linkbridge.datapath.pipeline import DEFAULT_MTU
from linkbridge.errors import ConfigError
from linkbridge.tunnel.netconf import InterfaceConfig, IPInterface, IPNetwork
from linkbridge.tunnel.tun import TunEndpoint

log = logging.getLogger(__name__)

MIN_MTU = 68
MAX_MTU = 65535
IPV6_MIN_MTU = 1280  # Linux turns IPv6 off on a device with a smaller MTU


def check_mtu(mtu: int) -> None:
    """A tunnel MTU must be MIN_MTU..MAX_MTU (the kernel's limits for an IPv4 device)."""
    if not MIN_MTU <= mtu <= MAX_MTU:
        raise ConfigError(f"MTU {mtu} out of range: must be {MIN_MTU}..{MAX_MTU}")


@dataclass(frozen=True)
class TunnelSpec:
    """What the tunnel device should look like; validated on construction."""

    name: str | None = None
    mtu: int = DEFAULT_MTU
    remotes: tuple[IPNetwork, ...] = ()
    addresses: tuple[IPInterface, ...] = ()

    def __post_init__(self) -> None:
        check_mtu(self.mtu)
        ipv6 = [str(net) for net in (*self.addresses, *self.remotes) if net.version == 6]
        if ipv6 and self.mtu < IPV6_MIN_MTU:
            raise ConfigError(
                f"IPv6 ({ipv6[0]}) needs a tunnel MTU of at least {IPV6_MIN_MTU}, not {self.mtu} "
                f"(Linux turns IPv6 off below it); give --mtu {IPV6_MIN_MTU}, and a link MTU "
                "smaller than that is bridged by fragmentation")


def parse_network(text: str) -> IPNetwork:
    """A REMOTE: an address (host route) or a CIDR subnet; host bits must be zero."""
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise ConfigError(f"bad remote {text!r}: {exc}") from None


def parse_interface(text: str) -> IPInterface:
    """A local address, optionally with a prefix length (default /32 or /128)."""
    try:
        return ipaddress.ip_interface(text.strip())
    except ValueError as exc:
        raise ConfigError(f"bad address {text!r}: {exc}") from None


def open_tun_tunnel(spec: TunnelSpec, stack: contextlib.ExitStack,
                    offloads: Sequence[int] | None = None,
                    metrics: Mapping[str, int] | None = None,
                    super_packet: int | None = None) -> TunEndpoint:
    """Create and configure the TUN device (with a virtio_net_hdr per packet for the offload
    layer, which asks the kernel for `offloads` in turn, when given; super-packets then of at
    most `super_packet` bytes where the kernel allows it), its routes with `metrics` when
    given; every step's undo goes on `stack`.

    If a step fails, unwinding `stack` removes what was done so far; closing the device
    removes it with its addresses and routes.
    """
    ipr = stack.enter_context(IPRoute())
    tun = TunEndpoint(spec.name, offloads is not None, offloads or ())
    stack.callback(tun.close)
    config = InterfaceConfig(ipr, tun.name)
    config.set_mtu(spec.mtu)
    if super_packet is not None and not config.limit_super_packets(super_packet):
        log.debug("%s: the kernel keeps its super-packet size", tun.name)
    if any(address.ip.is_link_local and address.version == 6 for address in spec.addresses):
        config.own_link_local_only()
    config.set_up()
    for address in spec.addresses:
        stack.callback(config.add_address(address))
    for network in spec.remotes:
        stack.callback(config.add_route(network, metrics))
    return tun


def change_routes(ifname: str, add: Sequence[IPNetwork], remove: Sequence[IPNetwork],
                  metrics: Mapping[str, int] | None = None) -> None:
    """Route `add` through the running device `ifname` and take `remove` off it (a reload
    changed a multipoint tunnel's peers); closing the device removes the added ones with it."""
    with IPRoute() as ipr:
        config = InterfaceConfig(ipr, ifname)
        for network in add:
            config.add_route(network, metrics)
        for network in remove:
            config.remove_route(network)
