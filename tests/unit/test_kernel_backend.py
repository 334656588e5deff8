"""The kernel backend's pure parts: spec validation, tunnel records, FOU message attributes."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from linkbridge.errors import ConfigError, TunnelError
from linkbridge.tunnel.kernel.backend import KernelTunnelSpec, free_name
from linkbridge.tunnel.kernel.fou import FouPort, foumsg
from linkbridge.tunnel.kernel.state import KernelTunnelState, StateStore


def state(name: str, rx: int, host: str = "127.0.0.1") -> KernelTunnelState:
    return KernelTunnelState(name=name, rx=rx, tx=rx + 1, host=host, mtu=100,
                             remotes=("10.0.2.2/32",), addresses=())


def test_records_round_trip_and_leave_nothing(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "net1")
    store.save(state("fou1", 2001))
    store.save(state("fou2", 3001, "127.0.0.2"))
    assert store.load("fou1") == state("fou1", 2001)
    assert store.find(rx=3001).name == "fou2"
    assert store.find(name="fou1").rx == 2001
    store.remove("fou1")
    store.remove("fou2")
    assert not (tmp_path / "net1").exists()


def test_find_says_what_is_known(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.save(state("fou1", 2001))
    with pytest.raises(TunnelError, match=r"no kernel tunnel named fou9 .*known: fou1 \(rx 2001\)"):
        store.find(name="fou9")
    store.save(state("fou2", 2001, "127.0.0.2"))
    with pytest.raises(TunnelError, match="several kernel tunnels with RX port 2001"):
        store.find(rx=2001)


def test_corrupt_record_is_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "fou1.json").write_text("{not json")
    with pytest.raises(TunnelError, match="unreadable state file"):
        StateStore(tmp_path).load("fou1")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"host": "10.0.0.1"}, "must be an IPv4 loopback address"),
    ({"host": "::1"}, "must be an IPv4 loopback address"),
    ({"host": "localhost"}, "not an IP address"),
    ({"mtu": 67}, "MTU 67 out of range"),
    ({"remotes": (ipaddress.ip_network("fd00::/64"),)}, "IPv4 only"),
    ({"name": "a-name-that-is-too-long"}, "1..15 characters"),
])
def test_spec_refuses(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        KernelTunnelSpec(rx=2001, tx=2002, **kwargs)  # type: ignore[arg-type]


def test_fou_port_encodes_the_kernel_layout() -> None:
    msg = foumsg()
    msg["cmd"], msg["version"] = 1, 1
    msg["attrs"] = FouPort(2001, "127.0.0.1").attrs()
    msg.encode()
    decoded = foumsg(msg.data)
    decoded.decode()
    assert decoded.get_attr("FOU_ATTR_PORT") == 2001
    assert decoded.get_attr("FOU_ATTR_LOCAL_V4") == "127.0.0.1"
    # PORT is attribute 1, big-endian: type 1, length 6, then 0x07d1
    assert bytes(msg.data[20:26]) == b"\x06\x00\x01\x00\x07\xd1"


def test_names_fill_the_first_gap() -> None:
    assert free_name(set()) == "fou1"
    assert free_name({"fou1", "fou3", "lo"}) == "fou2"
