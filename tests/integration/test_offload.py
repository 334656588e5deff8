"""TUN offloads (`--offload`) end to end on this kernel: two tunnels in namespaces, TCP with a
content check over IPv4 and IPv6, super-packets and chunks counted both ways and no IP
fragment on the underlay; a plain peer; each layer the offload keeps (--via sim:, keepalives);
the options that switch it off; encryption of the chunks; and the kernel refusing offloads
(real TUNSETOFFLOAD calls)."""

from __future__ import annotations

import ast
import contextlib
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from pyroute2 import IPRoute

from benchmarks.compare import set_mtu, wait_route
from linkbridge.datapath.offloading import HELLO_INTERVAL
from linkbridge.lab import netns
from linkbridge.lab.probes import ping, tcp_transfer
from linkbridge.lab.processes import LinkbridgeProcess, spawn
from linkbridge.lab.run import lab_tunnels
from linkbridge.lab.topology import OVERLAY, OVERLAY6, UNDERLAY, TwoHosts
from linkbridge.ops.keys import new_private_key, public_key_of
from linkbridge.plugin.registry import LinkRegistry
from linkbridge.tunnel.netconf import InterfaceConfig
from linkbridge.tunnel.tun import TunEndpoint
from linkbridge.wire.offload import (
    ALL_OFFLOADS,
    OFFLOAD_ATTEMPTS,
    TCP_OFFLOADS,
    TUN_F_CSUM,
    single_run_packet,
)
from linkbridge.wire.secure import OVERHEAD
from tests.helpers.namespace_state import snmp_counters

ON = ["--offload", "on"]
PORT = 47001
_DEVICE = re.compile(r"counters lbt0: (\{.*\})$", re.MULTILINE)
_LINK = re.compile(r"counters udp:\S*: (\{.*\})$", re.MULTILINE)
_ENCRYPT = re.compile(r"counters encrypt\+udp:\S*: (\{.*\})$", re.MULTILINE)


def logged(side: LinkbridgeProcess, pattern: re.Pattern[str] = _DEVICE) -> dict[str, object]:
    """The counters a stopped tunnel logged for its device (or, with _LINK, its link)."""
    found = pattern.findall(side.output())
    assert found, side.output()
    counters: dict[str, object] = ast.literal_eval(found[-1])
    return counters


def offload_of(counters: dict[str, object]) -> dict[str, int]:
    figures = counters.get("offload", {})
    assert isinstance(figures, dict)
    return figures


def snmp(ns: str) -> dict[str, int]:
    """IPv4 fragments made and reassemblies asked, and TCP/UDP checksum errors, in `ns`."""
    rows = snmp_counters(ns)
    return {"frag_creates": rows["Ip"]["FragCreates"], "reasm_reqds": rows["Ip"]["ReasmReqds"],
            "tcp_csum_errors": rows["Tcp"]["InCsumErrors"],
            "udp_csum_errors": rows["Udp"]["InCsumErrors"]}


def transfers(lab: TwoHosts, size: int, ipv6: bool = True) -> None:
    """TCP with a content check A -> B and B -> A, over IPv4 and (with `ipv6`) IPv6."""
    ways = [(lab.b, OVERLAY[1], lab.a), (lab.a, OVERLAY[0], lab.b)]
    if ipv6:
        ways += [(lab.b, OVERLAY6[1], lab.a), (lab.a, OVERLAY6[0], lab.b)]
    for server, destination, client in ways:
        result = tcp_transfer(server, destination, client, size)
        assert result.intact and result.received_bytes == size, (destination, result)


def udp_datagrams(sender: str, receiver: str, address: str) -> int:
    """200 UDP datagrams from namespace `sender` to `address` in `receiver`, whose kernel checks
    their checksums; how many arrived whole."""
    with netns.inside(receiver):
        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # room for them all
        server.bind((address, 5300))
    server.settimeout(2.0)
    try:
        with netns.inside(sender):
            client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with client:
            for n in range(200):
                client.sendto(bytes([n]) * (100 + n), (address, 5300))
                time.sleep(0.001)  # no burst for a queue to drop
        got = 0
        with contextlib.suppress(TimeoutError):
            while got < 200:
                data = server.recv(2000)
                assert data == bytes([data[0]]) * (100 + data[0])
                got += 1
        return got
    finally:
        server.close()


@contextlib.contextmanager
def two_tunnels(lab: TwoHosts, registry: LinkRegistry, args_a: Sequence[str],
                args_b: Sequence[str], link: str = "udp", ipv6: bool = True
                ) -> Iterator[tuple[LinkbridgeProcess, LinkbridgeProcess]]:
    """Tunnels over `link` with options of their own on each side."""
    with lab_tunnels(lab, link, ipv6=ipv6, registry=registry,
                     side_args=(args_a, args_b)) as sides:
        yield sides


def test_tcp_both_ways_as_super_packets_in_chunks(lab: TwoHosts, registry: LinkRegistry) -> None:
    before = [snmp(ns) for ns in (lab.a, lab.b)]
    with lab_tunnels(lab, "udp", ipv6=True, extra_args=ON, registry=registry) as (side_a, side_b):
        assert ping(lab.a, OVERLAY[1], count=5, interval=0.01).received == 5
        transfers(lab, 20_000_000)
        for ns in (lab.a, lab.b):  # super-packets whose chunks one UDP GSO send carries
            with netns.inside(ns), IPRoute() as ipr:
                (device,) = ipr.link("get", ifname="lbt0")
                assert device.get_attr("IFLA_GSO_MAX_SIZE") == single_run_packet(1472)
    # the underlay never fragments, and every checksum arrives right
    assert [snmp(ns) for ns in (lab.a, lab.b)] == before
    for side in (side_a, side_b):
        device = logged(side)
        figures = offload_of(device)
        assert device["drops"] == {}, device
        assert figures["kernel_flags"] == figures["enabled_flags"] == ALL_OFFLOADS
        assert figures["peer_agreed"] == 1
        assert figures["super_packets_read"] > 100 and figures["super_packets_written"] > 100
        assert figures["chunks_sent"] > 10 * figures["super_packets_read"]
        link = logged(side, _LINK)
        assert link["drops"] == {}, link
        # every datagram fits the path: the link never sent more than the chunk size on average
        assert isinstance(link["tx_bytes"], int) and isinstance(link["tx_packets"], int)
        assert link["tx_bytes"] <= 1472 * link["tx_packets"]
        assert "offload on (csum,tso4,tso6,uso4,uso6)" in side.output()


def test_chunks_fit_a_narrower_path(lab: TwoHosts, registry: LinkRegistry) -> None:
    """The underlay's MTU is 1400, the tunnel's 1472: chunks shrink to the path's MTU (read
    from the connected socket), and nothing is fragmented."""
    for ns, veth in ((lab.a, lab.veth_a), (lab.b, lab.veth_b)):
        with netns.inside(ns), IPRoute() as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname=veth)[0], mtu=1400)
    before = [snmp(ns) for ns in (lab.a, lab.b)]
    with lab_tunnels(lab, "udp", mtu=1472, extra_args=ON, registry=registry) as (side_a, _b):
        transfers(lab, 3_000_000, ipv6=False)
    assert [snmp(ns) for ns in (lab.a, lab.b)] == before
    link = logged(side_a, _LINK)
    assert isinstance(link["tx_bytes"], int) and isinstance(link["tx_packets"], int)
    assert offload_of(logged(side_a))["super_packets_read"] > 0
    assert link["tx_bytes"] <= 1372 * link["tx_packets"]


def test_a_plain_peer_gets_whole_packets_and_drops_the_hellos(
        lab: TwoHosts, registry: LinkRegistry) -> None:
    """B runs without --offload: A's hellos (IPv4 from 0.0.0.0) go into B's device, whose
    kernel discards them; A never agrees, so only whole packets with complete checksums go."""
    with two_tunnels(lab, registry, ON, []) as (side_a, side_b):
        transfers(lab, 5_000_000)
        time.sleep(HELLO_INTERVAL)
        assert ping(lab.a, OVERLAY[1], count=3, interval=0.05).received == 3  # a hello is due
    a = offload_of(logged(side_a))
    assert a["peer_agreed"] == 0 and a["enabled_flags"] == 0 and a["hellos_sent"] >= 2
    assert "chunks_sent" not in a and "super_packets_read" not in a
    assert logged(side_b)["drops"] == {} and logged(side_b, _LINK)["drops"] == {}


@pytest.mark.skipif(shutil.which("socat") is None, reason="socat is not installed")
def test_the_socat_variant_as_peer(lab: TwoHosts) -> None:
    """The original socat relay on B: it writes every datagram into its TUN, so a hello must
    be an IP packet its kernel takes and discards (a failed write would end socat)."""
    socat = spawn(lab.b, ["socat", f"TUN:{OVERLAY[1]}/30,tun-type=tun,iff-no-pi,iff-up,"
                          f"tun-name=lbt0", f"UDP-DATAGRAM:{UNDERLAY[0]}:{PORT},"
                          f"bind={UNDERLAY[1]}:{PORT}"], stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)
    try:
        set_mtu(lab.b, "lbt0", 1472)
        args = ["up", "--name", "lbt0", "--link", f"udp:{UNDERLAY[1]}:{PORT}?bind="
                f"{UNDERLAY[0]}:{PORT}", "--address", OVERLAY[0], "--remote", OVERLAY[1], *ON]
        with LinkbridgeProcess(lab.a, args, "tunnel A") as side_a:
            wait_route(lab.b, OVERLAY[0], "lbt0")
            for _ in range(2):
                assert ping(lab.a, OVERLAY[1], count=3, interval=0.05).received == 3
                time.sleep(HELLO_INTERVAL)
            transfers(lab, 5_000_000, ipv6=False)
            assert socat.poll() is None
        a = offload_of(logged(side_a))
        assert a["hellos_sent"] >= 2 and a["peer_agreed"] == 0 and "chunks_sent" not in a
    finally:
        socat.terminate()
        socat.communicate(timeout=10)


def test_a_kernel_that_refuses_every_offload_gets_whole_packets(
        lab: TwoHosts, registry: LinkRegistry) -> None:
    """A asks for a flag this kernel lacks (as an old kernel refuses USO): offload off there;
    B, told by A's hello that A's kernel takes no segmentation, turns on checksum offload only
    and completes the checksums its kernel leaves to it before packets leave."""
    before = [snmp(ns) for ns in (lab.a, lab.b)]
    with two_tunnels(lab, registry, [*ON, "--offload-flags", "0x8000"], ON) as (side_a, side_b):
        transfers(lab, 5_000_000)
        assert udp_datagrams(lab.b, lab.a, OVERLAY[0]) == 200  # checksums completed by B
    assert [snmp(ns) for ns in (lab.a, lab.b)] == before
    a, b = offload_of(logged(side_a)), offload_of(logged(side_b))
    assert a["kernel_flags"] == a["enabled_flags"] == 0 and a["peer_agreed"] == 1
    assert b["enabled_flags"] == TUN_F_CSUM and b["peer_agreed"] == 1
    assert b["checksums_completed"] > 100  # TCP from B, checksummed in linkbridge
    for figures in (a, b):
        assert "super_packets_read" not in figures and "chunks_sent" not in figures
    assert logged(side_a)["drops"] == {} and logged(side_b)["drops"] == {}


def test_the_usoless_retry_with_the_real_ioctl(root: None) -> None:
    """The first set asked for holds a flag this kernel refuses: the second is taken."""
    for attempts, accepted in (((ALL_OFFLOADS | 0x8000, TCP_OFFLOADS), TCP_OFFLOADS),
                               ((0x8000,), 0), (OFFLOAD_ATTEMPTS, ALL_OFFLOADS)):
        tun = TunEndpoint("lboff0", vnet_hdr=True, attempts=attempts)
        try:
            assert tun.accepted == accepted
        finally:
            tun.close()


def test_the_devices_super_packet_size_set_and_refused(lab: TwoHosts) -> None:
    """What open_tun_tunnel() asks of the device (tested whole above), and a size the kernel
    refuses (above the device's TSO limit): False, the device as it was."""
    with netns.inside(lab.a), IPRoute() as ipr:
        tun = TunEndpoint("lboff1", vnet_hdr=True)
        try:
            config = InterfaceConfig(ipr, tun.name)
            assert config.limit_super_packets(single_run_packet(1472))
            assert not config.limit_super_packets(1 << 20)
            (device,) = ipr.link("get", ifname=tun.name)
            assert device.get_attr("IFLA_GSO_MAX_SIZE") == single_run_packet(1472)
        finally:
            tun.close()


@pytest.mark.parametrize("extra", [
    pytest.param(["--via", "sim:?loss=0.3%&seed=5"], id="sim-loss"),
    pytest.param(["--keepalive", "0.2"], id="keepalive"),
])
def test_layers_that_keep_offload(lab: TwoHosts, registry: LinkRegistry,
                                  extra: list[str]) -> None:
    with lab_tunnels(lab, "udp", ipv6=True, extra_args=[*ON, *extra],
                     registry=registry) as (side_a, side_b):
        transfers(lab, 3_000_000)
    for side in (side_a, side_b):
        figures = offload_of(logged(side))
        assert figures["peer_agreed"] == 1 and figures["super_packets_read"] > 0
        drops = logged(side)["drops"]
        assert isinstance(drops, dict) and set(drops) <= {"offload_incomplete"}


def test_auto_steps_aside_for_compression(lab: TwoHosts, registry: LinkRegistry) -> None:
    with lab_tunnels(lab, "udp", extra_args=["--offload", "auto", "--compress", "auto"],
                     registry=registry) as (side_a, _side_b):
        transfers(lab, 1_000_000, ipv6=False)
    assert "offload" not in logged(side_a)


@pytest.mark.parametrize(("extra", "named"), [
    (["--compress", "auto"], "--compress"),
    (["--pcap", "/tmp/x.pcap"], "--pcap"),
    (["--fragment", "always"], "--fragment always"),
    (["--link", "udp:198.18.0.2:47000?mtu=500"], "link frames under 576 bytes"),
    (["--offload-flags", "csum,tso5"], "unknown offload 'tso5'"),
])
def test_offload_on_refuses_what_excludes_it(extra: list[str], named: str) -> None:
    link = [] if "--link" in extra else ["--link", "udp:198.18.0.2:47000"]  # (one link)
    argv = [sys.executable, "-m", "linkbridge", "up", *link, "--remote", "198.19.0.2", *ON,
            *extra]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], done.stderr


def test_offload_on_refuses_local_ports() -> None:
    argv = [sys.executable, "-m", "linkbridge", "up", "--rx", "5000", "--tx", "5001",
            "--remote", "198.19.0.2", *ON]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode != 0 and "local ports" in done.stderr, done.stderr


def key_args(tmp_path: Path) -> tuple[list[str], list[str]]:
    """`--private-key`/`--peer-public-key` for sides A and B, each the other's peer."""
    privates = [new_private_key() for _ in "ab"]
    args = []
    for index, name in enumerate("ab"):
        path = tmp_path / f"{name}.key"
        path.write_text(privates[index] + "\n")
        path.chmod(0o600)
        args.append(["--private-key", str(path),
                     "--peer-public-key", public_key_of(privates[1 - index])])
    return args[0], args[1]


def sealed_frames(side: LinkbridgeProcess) -> tuple[dict[str, Any], dict[str, Any]]:
    """The counters a stopped tunnel logged for its encrypt layer and for the link below it."""
    sealed = logged(side, _ENCRYPT)
    frames = sealed["frames"]
    assert isinstance(frames, dict)
    return sealed, frames


def test_encrypted_super_packets(lab: TwoHosts, registry: LinkRegistry, tmp_path: Path) -> None:
    """A with --offload on, B with auto, both encrypting: super-packets cross both ways as
    chunks, each sealed on its own into a frame that fits the link (1452 + 20 bytes), the hellos
    too; nothing fails authentication and the underlay never fragments."""
    keys_a, keys_b = key_args(tmp_path)
    before = [snmp(ns) for ns in (lab.a, lab.b)]
    with two_tunnels(lab, registry, [*ON, *keys_a], ["--offload", "auto", *keys_b]) as sides:
        transfers(lab, 10_000_000)
    assert [snmp(ns) for ns in (lab.a, lab.b)] == before
    for side in sides:
        device = logged(side)
        figures = offload_of(device)
        assert device["drops"] == {}, device
        assert figures["peer_agreed"] == 1 and figures["enabled_flags"] == ALL_OFFLOADS
        assert figures["super_packets_read"] > 50 and figures["super_packets_written"] > 50
        assert figures["chunks_sent"] > 10 * figures["super_packets_read"]
        sealed, frames = sealed_frames(side)
        assert sealed["drops"] == {} and frames["drops"] == {}, (sealed, frames)
        # every chunk and hello went down through the encrypt layer and came up out of it
        assert sealed["tx_packets"] >= figures["chunks_sent"] + figures["hellos_sent"]
        assert sealed["rx_packets"] >= figures["chunks_received"] + figures["hellos_received"]
        # one frame per sealed packet, 20 bytes longer (plus handshakes and keepalives)
        assert frames["tx_packets"] >= sealed["tx_packets"]
        assert frames["tx_bytes"] >= sealed["tx_bytes"] + OVERHEAD * sealed["tx_packets"]
        assert frames["tx_bytes"] <= 1472 * frames["tx_packets"]
        assert "offload on (" in side.output() and "handshake complete" in side.output()


def test_encrypted_chunks_fit_a_narrower_path(lab: TwoHosts, registry: LinkRegistry,
                                              tmp_path: Path) -> None:
    """As test_chunks_fit_a_narrower_path, encrypted: the path MTU is read from the UDP socket
    below the encrypt layer, and a chunk leaves room for the 20 bytes sealing adds."""
    for ns, veth in ((lab.a, lab.veth_a), (lab.b, lab.veth_b)):
        with netns.inside(ns), IPRoute() as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname=veth)[0], mtu=1400)
    keys_a, keys_b = key_args(tmp_path)
    before = [snmp(ns) for ns in (lab.a, lab.b)]
    mtu = ["--mtu", "1472"]
    with two_tunnels(lab, registry, [*mtu, *ON, *keys_a], [*mtu, *ON, *keys_b],
                     ipv6=False) as (side_a, _b):
        transfers(lab, 3_000_000, ipv6=False)
    assert [snmp(ns) for ns in (lab.a, lab.b)] == before
    assert offload_of(logged(side_a))["super_packets_read"] > 0
    sealed, frames = sealed_frames(side_a)
    assert sealed["drops"] == {} and frames["drops"] == {}, (sealed, frames)
    assert frames["tx_bytes"] <= 1372 * frames["tx_packets"]


def test_encrypted_with_a_plain_peer(lab: TwoHosts, registry: LinkRegistry,
                                     tmp_path: Path) -> None:
    """A encrypts with --offload on, B encrypts without offload: A's hellos reach B's device
    sealed and opened like any packet and are discarded there; whole packets both ways."""
    keys_a, keys_b = key_args(tmp_path)
    with two_tunnels(lab, registry, [*ON, *keys_a], keys_b, ipv6=False) as (side_a, side_b):
        transfers(lab, 3_000_000, ipv6=False)
    a = offload_of(logged(side_a))
    assert a["peer_agreed"] == 0 and a["hellos_sent"] >= 1 and "chunks_sent" not in a
    for side in (side_a, side_b):
        sealed, frames = sealed_frames(side)
        assert sealed["drops"] == {} and frames["drops"] == {}, (sealed, frames)
    assert logged(side_b)["drops"] == {}
