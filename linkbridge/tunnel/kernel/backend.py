"""The kernel backend: an IPIP device with FOU encapsulation on loopback, set up and taken down.

The kernel wraps every packet routed into the device in UDP to `host:TX` (where the link
program listens) and unwraps UDP arriving on `host:RX` (the FOU port) into the device. The
kernel tells IPIP tunnels apart only by their outer addresses, so each kernel tunnel owns one
loopback address, `host` (default 127.0.0.1, as in the original tool): it is the tunnel's local
and remote end and the FOU port's bound address. A second tunnel needs another one
(`--host 127.0.0.2`), and its link program the same `--host`.

Unlike the userspace backend, the device outlives the process: `open_fou_tunnel` sets it up and
records it in a state file; `close_fou_tunnel` removes it, in any order.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from linkbridge.errors import ConfigError, TunnelError
from linkbridge.tunnel.kernel.fou import Fou, FouPort
from linkbridge.tunnel.kernel.state import KernelTunnelState, StateStore
from linkbridge.tunnel.netconf import InterfaceConfig, netlink_step
from linkbridge.tunnel.setup import TunnelSpec

MODULES = ("ipip", "fou")  # the TUN module is not needed: the kernel's own device carries it
TUNNEL_ENCAP_FOU = 1
NAME_PREFIX = "fou"
MAX_NAME = 15
USERSPACE_HINT = ("use the userspace backend instead (linkbridge up without --backend fou: "
                  "a TUN device, same ports and options)")


@dataclass(frozen=True, kw_only=True)
class KernelTunnelSpec(TunnelSpec):
    """A FOU+IPIP tunnel as asked for, on the FOU port `rx` sending to `tx`; validated on
    construction."""

    rx: int
    tx: int
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        try:
            host = ipaddress.ip_address(self.host)
        except ValueError:
            raise ConfigError(f"bad --host {self.host!r}: not an IP address") from None
        if host.version != 4 or not host.is_loopback:
            raise ConfigError(f"--host {self.host} for the fou backend must be an IPv4 loopback "
                              "address (127.x.y.z): the kernel tunnel's ends live on loopback")
        for network in (*self.remotes, *self.addresses):
            if network.version != 4:
                raise ConfigError(f"{network}: an IPIP tunnel carries IPv4 only; "
                                  f"{USERSPACE_HINT}")
        if self.name is not None and not 0 < len(self.name) <= MAX_NAME:
            raise ConfigError(f"bad device name {self.name!r}: 1..{MAX_NAME} characters")
        super().__post_init__()  # the MTU, once IPv6 is ruled out


def ensure_modules(modules: tuple[str, ...] = MODULES) -> None:
    """Load the kernel modules the backend needs, or say in one line that the kernel lacks them."""
    missing = [name for name in modules if not os.path.isdir(f"/sys/module/{name}")]
    if not missing:
        return
    modprobe = shutil.which("modprobe") or "/sbin/modprobe"
    failed = []
    for name in missing:
        try:
            result = subprocess.run([modprobe, "-q", name], capture_output=True, text=True,
                                    timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            failed.append(f"{name} ({exc})")
            continue
        if result.returncode != 0 or not os.path.isdir(f"/sys/module/{name}"):
            failed.append(name)
    if failed:
        raise TunnelError(f"this kernel lacks the {' and '.join(failed)} module"
                          f"{'s' if len(failed) > 1 else ''} the fou backend needs; "
                          f"{USERSPACE_HINT}")


def ipip_tunnels(ipr: IPRoute) -> Iterator[tuple[str, str | None, str | None]]:
    """(name, local, remote) of every IPIP device in this network namespace."""
    for msg in ipr.get_links():
        info = msg.get_attr("IFLA_LINKINFO")
        if info is None or info.get_attr("IFLA_INFO_KIND") != "ipip":
            continue
        data = info.get_attr("IFLA_INFO_DATA")
        local = data.get_attr("IFLA_IPIP_LOCAL") if data is not None else None
        remote = data.get_attr("IFLA_IPIP_REMOTE") if data is not None else None
        yield msg.get_attr("IFLA_IFNAME"), local, remote


def free_name(taken: set[str]) -> str:
    """The first `fouN` (N from 1, as in the original tool) not in `taken`."""
    number = 1
    while f"{NAME_PREFIX}{number}" in taken:
        number += 1
    return f"{NAME_PREFIX}{number}"


def check_host_free(ipr: IPRoute, host: str) -> None:
    """Refuse a loopback address another IPIP tunnel already uses, naming a free one."""
    used = {local: name for name, local, remote in ipip_tunnels(ipr) if local == remote}
    if host not in used:
        return
    spare = next((f"127.0.0.{n}" for n in range(1, 255) if f"127.0.0.{n}" not in used), None)
    hint = f"give --host {spare}" if spare else "give another 127.x.y.z with --host"
    raise TunnelError(f"loopback address {host} is already taken by kernel tunnel {used[host]}; "
                      f"{hint} (and the same --host to its link program)")


def open_fou_tunnel(spec: KernelTunnelSpec, store: StateStore) -> KernelTunnelState:
    """Create, configure and record the tunnel; on any failure remove what was done so far."""
    ensure_modules()
    with contextlib.ExitStack() as stack:
        ipr = stack.enter_context(IPRoute())
        check_host_free(ipr, spec.host)
        devices = {msg.get_attr("IFLA_IFNAME") for msg in ipr.get_links()}
        recorded = {state.name for state in store.all()}
        name = spec.name or free_name(devices | recorded)
        if name in devices:
            raise TunnelError(f"device {name} already exists")
        if name in recorded:
            raise TunnelError(f"a kernel tunnel {name} is on record but its device is gone; "
                              f"`linkbridge down {name}` clears the record")
        with netlink_step(f"creating IPIP device {name}"):
            ipr.link("add", ifname=name, kind="ipip", mtu=spec.mtu,
                     ipip_local=spec.host, ipip_remote=spec.host, ipip_pmtudisc=1,
                     ipip_encap_type=TUNNEL_ENCAP_FOU, ipip_encap_flags=0,
                     ipip_encap_sport=0, ipip_encap_dport=spec.tx)
        stack.callback(delete_device, ipr, name)
        config = InterfaceConfig(ipr, name)
        config.set_up()
        for address in spec.addresses:
            config.add_address(address)  # goes with the device
        port = FouPort(spec.rx, spec.host)
        with Fou() as fou:
            fou.add(port)
        stack.callback(close_fou_port, port)
        for network in spec.remotes:
            config.add_route(network)  # goes with the device
        state = KernelTunnelState(name=name, rx=spec.rx, tx=spec.tx, host=spec.host,
                                  mtu=spec.mtu, remotes=tuple(map(str, spec.remotes)),
                                  addresses=tuple(map(str, spec.addresses)))
        store.save(state)
        stack.pop_all()
    return state


def close_fou_tunnel(state: KernelTunnelState, store: StateStore) -> list[str]:
    """Remove the device (with its addresses and routes) and the FOU port, then the record.

    Returns what was already gone (someone deleted it by hand), so the caller can say so.
    """
    gone = []
    with IPRoute() as ipr:
        if not delete_device(ipr, state.name):
            gone.append(f"device {state.name}")
    if not close_fou_port(FouPort(state.rx, state.host)):
        gone.append(f"FOU port {state.host}:{state.rx}")
    store.remove(state.name)
    return gone


def delete_device(ipr: IPRoute, name: str) -> bool:
    """Delete interface `name`; False when it did not exist."""
    found = ipr.link_lookup(ifname=name)
    if not found:
        return False
    try:
        ipr.link("del", index=found[0])
    except NetlinkError as exc:
        if exc.code == 19:  # ENODEV: gone meanwhile
            return False
        raise TunnelError(f"cannot delete device {name}: {exc}") from None
    return True


def close_fou_port(port: FouPort) -> bool:
    """Close a FOU port; False when it was not open (or the kernel has no FOU at all)."""
    try:
        fou = Fou()
    except TunnelError:
        return False
    with fou:
        return fou.delete(port)
