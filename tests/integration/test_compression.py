"""Header compression end to end: two tunnels in namespaces with `--compress auto` or `vj`,
ping and TCP with a content check, the layer's counters, a mismatched pair, and refusals."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from linkbridge.lab.probes import ping, tcp_transfer
from linkbridge.lab.processes import LinkbridgeProcess
from linkbridge.lab.run import lab_tunnels, tunnel_args
from linkbridge.lab.topology import OVERLAY, OVERLAY6, TwoHosts, set_sysctl
from linkbridge.ops.keys import new_private_key, public_key_of
from linkbridge.plugin.registry import LinkRegistry
from linkbridge.plugin.url import parse_link_url

_COUNTERS = re.compile(r"counters (?:auto|vj)\+\S+: (\{.*\})$", re.MULTILINE)
_PLAIN = re.compile(r"counters udp:\S*: (\{.*\})$", re.MULTILINE)


def layer_counters(side: LinkbridgeProcess, pattern: re.Pattern[str] = _COUNTERS
                   ) -> dict[str, object]:
    """The compression layer's counters a stopped tunnel logged."""
    found = pattern.findall(side.output())
    assert found, side.output()
    counters: dict[str, object] = ast.literal_eval(found[-1])
    return counters


def figures(counters: dict[str, object], way: str) -> dict[str, int]:
    compress = counters["compress"]
    assert isinstance(compress, dict)
    result: dict[str, int] = compress[way]
    return result


@pytest.fixture
def no_timestamps(lab: TwoHosts) -> Iterator[None]:
    """TCP timestamps off in both lab hosts, as VJ needs (its TCP options must not change)."""
    for ns in (lab.a, lab.b):
        set_sysctl(ns, "net/ipv4/tcp_timestamps", "0")
    yield


@pytest.mark.parametrize("link", ["sim:?mtu=120", "udp:?mtu=120"])
def test_auto_carries_ipv4_and_ipv6_ping_and_tcp(lab: TwoHosts, link: str,
                                                 registry: LinkRegistry) -> None:
    with lab_tunnels(lab, link, mtu=1280, ipv6=True, extra_args=["--compress", "auto"],
                     registry=registry) as (side_a, side_b):
        for source, destination in ((lab.a, OVERLAY[1]), (lab.b, OVERLAY6[0])):
            result = ping(source, destination, count=10, interval=0.01)
            assert result.received == 10, result
        for server, destination, client in ((lab.b, OVERLAY[1], lab.a),
                                            (lab.a, OVERLAY6[0], lab.b)):
            transfer = tcp_transfer(server, destination, client, 300_000)
            assert transfer.intact and transfer.received_bytes == 300_000
    a, b = layer_counters(side_a), layer_counters(side_b)
    for sender, receiver in ((a, b), (b, a)):
        sent = figures(sender, "tx")
        assert sent["compressed"] >= 0.9 * sent["packets"], sender
        assert sent["saved"] > 30 * sent["compressed"]  # TCP/IP with timestamps: 52 -> ~10
        assert receiver["drops"] == {}, receiver
        # frames the kernel dropped under the TCP burst (a full socket buffer) or still in
        # flight at shutdown never reach the receiver's layer: no more than were sent
        assert 0.8 * sent["compressed"] <= figures(receiver, "rx")["compressed"]
        assert figures(receiver, "rx")["compressed"] <= sent["compressed"]


def test_auto_recovers_from_loss_without_a_wrong_packet(lab: TwoHosts,
                                                         registry: LinkRegistry) -> None:
    link = "sim:?mtu=200&loss=4%&seed=11"
    with lab_tunnels(lab, link, extra_args=["--compress", "auto"], registry=registry) as (
            side_a, side_b):
        transfer = tcp_transfer(lab.b, OVERLAY[1], lab.a, 200_000, timeout=90)
        assert transfer.intact and transfer.received_bytes == 200_000
        # 4% loss each way, and a lost packet may cost the next one its context: about 85%
        # of pings come back; 26 of 40 is 3.5 standard deviations below that, and a link that
        # did not recover answers none
        assert ping(lab.a, OVERLAY[1], count=40, interval=0.02).received >= 26
    a, b = layer_counters(side_a), layer_counters(side_b)
    for counters in (a, b):
        reasons = set(counters["drops"])  # type: ignore[arg-type]
        assert reasons <= {"compress_no_context", "compress_stale"}, counters
    assert figures(a, "tx")["compressed"] >= 0.8 * figures(a, "tx")["packets"]


def test_auto_sends_a_kernel_bulk_flow_as_sequential_frames(lab: TwoHosts, no_timestamps: None,
                                                            registry: LinkRegistry) -> None:
    """The kernel's own segments (timestamps off) follow one another as sequential frames
    take them: the IP ID one on, the sequence number one payload on; 40 header bytes become 3
    for nearly all of them (a compressed frame would save about 32)."""
    with lab_tunnels(lab, "udp:?mtu=100", extra_args=["--compress", "auto"],
                     registry=registry) as (side_a, side_b):
        transfer = tcp_transfer(lab.b, OVERLAY[1], lab.a, 100_000)
        assert transfer.intact and transfer.received_bytes == 100_000
    sent, b = figures(layer_counters(side_a), "tx"), layer_counters(side_b)
    assert sent["packets"] >= 100_000 / 60
    assert sent["saved"] >= 36 * sent["packets"], sent
    assert b["drops"] == {}, b


def test_vj_carries_tcp_both_ways(lab: TwoHosts, no_timestamps: None,
                                  registry: LinkRegistry) -> None:
    with lab_tunnels(lab, "udp:?mtu=296", extra_args=["--compress", "vj"],
                     registry=registry) as (side_a, side_b):
        assert ping(lab.a, OVERLAY[1], count=5, interval=0.01).received == 5
        for server, destination, client in ((lab.b, OVERLAY[1], lab.a),
                                            (lab.a, OVERLAY[0], lab.b)):
            transfer = tcp_transfer(server, destination, client, 300_000)
            assert transfer.intact and transfer.received_bytes == 300_000
    a, b = layer_counters(side_a), layer_counters(side_b)
    for sender, receiver in ((a, b), (b, a)):
        sent = figures(sender, "tx")
        assert sent["compressed"] >= 0.8 * sent["packets"] - 10, sender  # pings go plain
        assert receiver["drops"] == {}, receiver


def test_a_peer_without_compression_counts_drops(lab: TwoHosts,
                                                  registry: LinkRegistry) -> None:
    url = parse_link_url("udp")
    link_class = registry.link_class("udp")
    with link_class.lab_pair(url, lab.sides) as (url_a, url_b):  # type: ignore[attr-defined]
        args_a = [*tunnel_args(url_a, (), None, OVERLAY[0], OVERLAY[1]), "--compress", "auto"]
        args_b = tunnel_args(url_b, (), None, OVERLAY[1], OVERLAY[0])
        with LinkbridgeProcess(lab.a, args_a, "A") as side_a, \
                LinkbridgeProcess(lab.b, args_b, "B") as side_b:
            result = ping(lab.a, OVERLAY[1], count=5, interval=0.01, timeout=0.5)
            assert result.received == 0
    plain = layer_counters(side_b, _PLAIN)
    assert plain["drops"] == {"malformed_not_ip": 5}, plain  # never into B's TUN
    assert layer_counters(side_a)["drops"] == {}


@pytest.mark.parametrize(("args", "words"), [
    (["--mtu", "200", "--compress", "vj"], "vj cannot share a link with fragmentation"),
    (["--keepalive", "5", "--compress", "vj"], "vj cannot share a link with keepalives"),
])
def test_vj_refuses_other_layers_in_one_line(args: list[str], words: str) -> None:
    done = subprocess.run([sys.executable, "-m", "linkbridge", "up", "--link",
                           "udp:127.0.0.1:9?mtu=100", "--remote", "198.19.9.9", *args],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert words in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.usefixtures("root", "run_dir")
def test_lab_reports_compression_per_direction() -> None:
    done = subprocess.run([sys.executable, "-m", "linkbridge", "lab", "--link", "sim:?mtu=100",
                           "--compress", "auto", "--count", "5", "--bytes", "100000"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.strip().startswith("compress")]
    assert [line.split(":")[0].strip() for line in lines] == ["compress A -> B",
                                                              "compress B -> A"], done.stdout
    for line in lines:
        compressed, packets = re.search(r"(\d+) of (\d+) packets compressed", line).groups()  # type: ignore[union-attr]
        assert int(compressed) >= 0.9 * int(packets) > 0, line
        ratio = float(re.search(r"link/IP bytes (\d\.\d+)", line).group(1))  # type: ignore[union-attr]
        assert ratio < 0.9, line
        assert line.endswith("failures at the receiver: none"), line


def test_auto_above_encryption(lab: TwoHosts, registry: LinkRegistry, tmp_path: Path) -> None:
    """compress -> encrypt -> link: compressed frames are encrypted whole (architecture.md)."""
    private = [new_private_key() for _side in "ab"]
    files = []
    for name, key in zip("ab", private, strict=True):
        path = tmp_path / f"{name}.key"
        path.write_text(key + "\n")
        path.chmod(0o600)
        files.append(str(path))
    url = parse_link_url("udp:?mtu=200")
    link_class = registry.link_class("udp")
    with link_class.lab_pair(url, lab.sides) as urls:  # type: ignore[attr-defined]
        sides = [LinkbridgeProcess(host, [*tunnel_args(urls[i], (), None, OVERLAY[i],
                                                       OVERLAY[1 - i]),
                                          "--compress", "auto", "--private-key", files[i],
                                          "--peer-public-key", public_key_of(private[1 - i])],
                                   f"tunnel {'AB'[i]}")
                 for i, host in enumerate((lab.a, lab.b))]
        with sides[0], sides[1]:
            assert ping(lab.a, OVERLAY[1], count=5, interval=0.05, timeout=3.0).received == 5
            transfer = tcp_transfer(lab.b, OVERLAY[1], lab.a, 200_000)
            assert transfer.intact and transfer.received_bytes == 200_000
    a, b = layer_counters(sides[0]), layer_counters(sides[1])
    assert figures(a, "tx")["compressed"] >= 0.9 * figures(a, "tx")["packets"], a
    assert b["drops"] == {}, b
    assert "encrypt+" in sides[0].output().split("counters auto+")[-1].split(":")[0]
