"""Link fragmentation end to end: IPv6 with the TUN at MTU 1280 over 64-byte link frames."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import time
from collections.abc import Sequence

import pytest

from linkbridge.errors import ConfigError
from linkbridge.lab.probes import ping, tcp_transfer
from linkbridge.lab.processes import LinkbridgeProcess
from linkbridge.lab.run import lab_tunnels
from linkbridge.lab.topology import OVERLAY, OVERLAY6, UNDERLAY, TwoHosts
from linkbridge.plugin.registry import LinkRegistry, get_plugin_manager
from linkbridge.plugin.url import parse_link_url
from tests.helpers.commands import unanswered

REASSEMBLY_TIMEOUT = 0.5
LOSS_SLACK = 3  # packets whose every fragment was lost (or in flight at shutdown): uncounted
LATE = 3.0  # seconds a ping waits for its reply: a stalled host delays, never loses
_COUNTERS = re.compile(r"counters fragment\+\S+: (\{.*\})$", re.MULTILINE)


def usable(link: str) -> str:
    """`link` itself, or skip when an installed plugin does not accept it yet."""
    try:
        LinkRegistry(get_plugin_manager()).link_options(parse_link_url(link))
    except ConfigError as exc:
        pytest.skip(f"{link} not usable here: {exc}")
    return link


def layer_counters(side: LinkbridgeProcess) -> dict[str, object]:
    """The fragmentation layer's counters a stopped tunnel logged (packets, with its frames)."""
    found = _COUNTERS.findall(side.output())
    assert found, side.output()
    counters: dict[str, object] = ast.literal_eval(found[-1])
    return counters


def drops(counters: dict[str, object]) -> dict[str, int]:
    value = counters["drops"]
    assert isinstance(value, dict)
    return value


@pytest.mark.parametrize("link", ["udp:?mtu=64", "sim:?mtu=64"])
def test_ipv6_ping_and_tcp_with_tun_mtu_1280_over_64_byte_frames(
    lab: TwoHosts, link: str, registry: LinkRegistry
) -> None:
    with lab_tunnels(lab, usable(link), mtu=1280, ipv6=True, registry=registry) as (
            side_a, side_b):
        # delivery, not delay, is checked: a reply may wait out a stall of a loaded host
        small = ping(lab.a, OVERLAY6[1], count=10, interval=0.01, timeout=LATE)
        big = ping(lab.b, OVERLAY6[0], count=5, interval=0.01, size=1200,  # 21 fragments
                   timeout=LATE)
        v4 = ping(lab.a, OVERLAY[1], count=3, interval=0.01, size=1200, timeout=LATE)
        transfer = tcp_transfer(lab.b, OVERLAY6[1], lab.a, 1_000_000)
    a, b = layer_counters(side_a), layer_counters(side_b)
    # (checked after the tunnels stopped: a ping that missed is shown with both sides' counters)
    assert unanswered(small) == [] and unanswered(big) == [] and unanswered(v4) == [], (
        f"unanswered {unanswered(small)} {unanswered(big)} {unanswered(v4)}; A {a}; B {b}")
    assert transfer.received_bytes == 1_000_000
    assert transfer.intact
    frames_a = a["frames"]
    assert isinstance(frames_a, dict) and isinstance(a["tx_packets"], int)
    assert frames_a["tx_packets"] > 15 * a["tx_packets"] // 2  # mostly full-size packets, split
    assert max(frames_a["tx_bytes"], 1) // max(frames_a["tx_packets"], 1) <= 64
    assert drops(b) == {}, b
    assert isinstance(b["rx_packets"], int)
    assert 0 <= a["tx_packets"] - b["rx_packets"] <= LOSS_SLACK  # in flight when B stopped


@pytest.mark.parametrize(("link", "via"), [
    ("udp:?mtu=64", ["sim:?loss=2%&seed=7"]),
    ("sim:?mtu=64&loss=2%&seed=7", []),
])
def test_tcp_completes_over_lossy_frames_and_lost_fragments_lose_whole_packets(
    lab: TwoHosts, link: str, via: Sequence[str], registry: LinkRegistry
) -> None:
    extra = ["--fragment-timeout", str(REASSEMBLY_TIMEOUT)]
    with lab_tunnels(lab, usable(link), via, mtu=1280, ipv6=True, extra_args=extra,
                     registry=registry) as (
            side_a, side_b):
        transfer = tcp_transfer(lab.b, OVERLAY6[1], lab.a, 200_000, timeout=90)
        assert transfer.received_bytes == 200_000
        assert transfer.intact
        time.sleep(REASSEMBLY_TIMEOUT + 0.5)  # let partly received packets expire
    a, b = layer_counters(side_a), layer_counters(side_b)
    assert isinstance(a["tx_packets"], int) and isinstance(b["rx_packets"], int)
    lost = drops(b).get("reassembly_timeout", 0) + drops(b).get("reassembly_overflow", 0)
    assert lost > 0, b  # 2% of frames lost: about a third of 22-fragment packets
    assert set(drops(b)) <= {"reassembly_timeout", "reassembly_overflow"}, b
    assert 0 <= a["tx_packets"] - b["rx_packets"] - lost <= LOSS_SLACK, (a, b)


def test_duplicated_and_reordered_frames_still_make_whole_packets(
    lab: TwoHosts, registry: LinkRegistry
) -> None:
    via = ["sim:?duplicate=5%&delay=2ms&jitter=2ms&seed=3"]  # jitter reorders frames
    with lab_tunnels(lab, "udp:?mtu=64", via, mtu=1280, ipv6=True, registry=registry) as (
            side_a, side_b):
        pings = ping(lab.a, OVERLAY6[1], count=5, interval=0.01, size=1000, timeout=LATE)
        transfer = tcp_transfer(lab.b, OVERLAY6[1], lab.a, 300_000)
    a, b = layer_counters(side_a), layer_counters(side_b)
    assert unanswered(pings) == [], f"unanswered {unanswered(pings)}; A {a}; B {b}"
    assert transfer.intact and transfer.received_bytes == 300_000
    assert isinstance(a["tx_packets"], int) and isinstance(b["rx_packets"], int)
    assert set(drops(b)) == {"fragment_duplicate"}, b  # each duplicate counted, none delivered
    assert 0 <= a["tx_packets"] - b["rx_packets"] <= LOSS_SLACK, (a, b)


def test_fragment_never_leaves_big_packets_to_the_link_mtu(lab: TwoHosts,
                                                            registry: LinkRegistry) -> None:
    with lab_tunnels(lab, "udp:?mtu=64", mtu=1280, ipv6=True,
                     extra_args=["--fragment", "never"], registry=registry) as (side_a, _):
        assert ping(lab.a, OVERLAY6[1], count=2, interval=0.01, timeout=0.3).received == 0
    assert "fragment+" not in side_a.output()
    assert "'mtu':" in side_a.output()  # the link dropped and counted them


def test_link_half_fragments_for_an_external_tunnel(lab: TwoHosts) -> None:
    """`linkbridge link --fragment always` carries a 1280-MTU tunnel on local ports."""
    rx, tx, link_port = 2001, 2002, 6000
    sides = []
    for ns, (local, remote), (local6, remote6), peer in (
        (lab.a, OVERLAY, OVERLAY6, UNDERLAY[1]), (lab.b, OVERLAY[::-1], OVERLAY6[::-1], UNDERLAY[0])
    ):
        sides += [
            LinkbridgeProcess(ns, ["tunnel", "--rx", str(rx), "--tx", str(tx), "--mtu", "1280",
                                   "--address", local, "--remote", remote,
                                   "--address", f"{local6}/64", "--remote", remote6], "tunnel"),
            LinkbridgeProcess(ns, ["link", f"udp:{peer}:{link_port}?mtu=64", "--rx", str(rx),
                                   "--tx", str(tx), "--fragment", "always"], "link half"),
        ]
    with sides[0], sides[1], sides[2], sides[3]:
        assert ping(lab.a, OVERLAY6[1], count=3, interval=0.01, size=1000).received == 3
        transfer = tcp_transfer(lab.b, OVERLAY6[1], lab.a, 300_000)
        assert transfer.intact and transfer.received_bytes == 300_000
    assert drops(layer_counters(sides[3])) == {}


def test_tunnel_mtu_too_big_for_the_frames_is_one_line_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "linkbridge", "up", "--link", "udp:127.0.0.1:9?mtu=20",
         "--mtu", "9000", "--remote", "198.19.0.2"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr == ("linkbridge: error: tunnel MTU 9000 needs more than 256 fragments of "
                           "20 bytes; the most is 4096\n")
