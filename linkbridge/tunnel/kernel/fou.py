"""The kernel's generic-netlink "fou" family: open, close and list FOU receive ports.

pyroute2 has no class for this family, so this defines its message layout (from the kernel's
uapi linux/fou.h) on top of pyroute2's generic netlink socket. A FOU port is a kernel UDP socket
that strips the UDP header of what arrives and hands the payload to the IP protocol `ipproto`
(4: IP-in-IP), the receive half of a FOU+IPIP tunnel.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from pyroute2.netlink import NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, genlmsg
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.generic import GenericNetlinkSocket

from linkbridge.errors import TunnelError

FOU_GENL_NAME = "fou"
FOU_GENL_VERSION = 1
FOU_CMD_ADD = 1
FOU_CMD_DEL = 2
FOU_CMD_GET = 3
FOU_ENCAP_DIRECT = 1
IPPROTO_IPIP = 4


class foumsg(genlmsg):  # type: ignore[misc]  # pyroute2 is untyped; its naming style
    """A fou family message; attribute order is the kernel's enum."""

    prefix = "FOU_ATTR_"
    nla_map = (
        ("FOU_ATTR_UNSPEC", "none"),
        ("FOU_ATTR_PORT", "be16"),
        ("FOU_ATTR_AF", "uint8"),
        ("FOU_ATTR_IPPROTO", "uint8"),
        ("FOU_ATTR_TYPE", "uint8"),
        ("FOU_ATTR_REMCSUM_NOPARTIAL", "flag"),
        ("FOU_ATTR_LOCAL_V4", "ip4addr"),
        ("FOU_ATTR_LOCAL_V6", "ip6addr"),
        ("FOU_ATTR_PEER_V4", "ip4addr"),
        ("FOU_ATTR_PEER_V6", "ip6addr"),
        ("FOU_ATTR_PEER_PORT", "be16"),
        ("FOU_ATTR_IFINDEX", "int32"),
    )


@dataclass(frozen=True)
class FouPort:
    """A FOU receive port: UDP `port` (bound to `local`, or any address when None)."""

    port: int
    local: str | None = None
    ipproto: int = IPPROTO_IPIP

    def attrs(self) -> list[tuple[str, Any]]:
        """The attributes that identify this port to the kernel (for add and delete alike)."""
        attrs: list[tuple[str, Any]] = [("FOU_ATTR_PORT", self.port),
                                        ("FOU_ATTR_AF", socket.AF_INET)]
        if self.local is not None:
            attrs.append(("FOU_ATTR_LOCAL_V4", self.local))
        return attrs


class Fou:
    """A generic netlink socket bound to the fou family; use as a context manager."""

    def __init__(self) -> None:
        self._sock = GenericNetlinkSocket()
        try:
            self._sock.bind(FOU_GENL_NAME, foumsg)
        except NetlinkError as exc:
            self._sock.close()
            raise TunnelError("the kernel has no FOU support (generic netlink family 'fou' "
                              f"not found: {exc}); load the fou module") from None

    def __enter__(self) -> Fou:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    def _request(self, cmd: int, attrs: list[tuple[str, Any]], flags: int) -> list[foumsg]:
        msg = foumsg()
        msg["cmd"] = cmd
        msg["version"] = FOU_GENL_VERSION
        msg["attrs"] = attrs
        return list(self._sock.nlm_request(msg, msg_type=self._sock.prid, msg_flags=flags))

    def add(self, port: FouPort) -> None:
        """Open `port` for direct encapsulation of `port.ipproto`."""
        attrs = [*port.attrs(), ("FOU_ATTR_IPPROTO", port.ipproto),
                 ("FOU_ATTR_TYPE", FOU_ENCAP_DIRECT)]
        try:
            self._request(FOU_CMD_ADD, attrs, NLM_F_REQUEST | NLM_F_ACK)
        except NetlinkError as exc:
            where = f"{port.local}:{port.port}" if port.local else f"port {port.port}"
            raise TunnelError(f"cannot open FOU receive port {where}: "
                              f"{_reason(exc)}") from None

    def delete(self, port: FouPort) -> bool:
        """Close `port`; False when the kernel had no such port."""
        try:
            self._request(FOU_CMD_DEL, port.attrs(), NLM_F_REQUEST | NLM_F_ACK)
        except NetlinkError as exc:
            if exc.code in (2, 3):  # ENOENT/ESRCH: already gone
                return False
            raise TunnelError(f"cannot close FOU port {port.port}: {_reason(exc)}") from None
        return True

    def ports(self) -> list[FouPort]:
        """Every FOU port of this network namespace."""
        found = []
        for msg in self._request(FOU_CMD_GET, [], NLM_F_REQUEST | NLM_F_DUMP):
            found.append(FouPort(port=msg.get_attr("FOU_ATTR_PORT"),
                                 local=msg.get_attr("FOU_ATTR_LOCAL_V4"),
                                 ipproto=msg.get_attr("FOU_ATTR_IPPROTO")))
        return found


def _reason(exc: NetlinkError) -> str:
    return str(exc.args[1]) if len(exc.args) > 1 else str(exc)
