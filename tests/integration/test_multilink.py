"""Several links per peer (docs/multilink.md) between two namespaces joined by two veth pairs:
failover when the primary's veth is cut (with pyroute2, outside the tunnel processes) and its
return after the hold time, duplicate over two lossy sim: links with exactly-once delivery,
both with encryption on and no frame refused as a replay."""

from __future__ import annotations

import contextlib
import random
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from linkbridge_udp import LAB_PORT as UDP_LAB_PORT

from benchmarks.multilink import DUPLICATE_SEEDS, duplicate_run
from linkbridge.lab import netns
from linkbridge.lab.links import first_reply, set_veth
from linkbridge.lab.options import LabOptions
from linkbridge.lab.probes import ping, tcp_transfer
from linkbridge.lab.processes import LinkbridgeProcess
from linkbridge.lab.run import TUN_NAME, lab_run_tunnels, run_lab
from linkbridge.lab.topology import (
    OVERLAY,
    UNDERLAY,
    TwoHosts,
    link_stats,
)
from linkbridge.plugin.registry import LinkRegistry
from linkbridge.wire import drops
from linkbridge.wire.multilink import DATA_HEADER, PROBE_FRAME, data_frame
from tests.helpers.commands import tunnel_status
from tests.helpers.ip_packets import udp
from tests.helpers.ping_stream import ping_stream
from tests.helpers.waiting import settled, wait_for


def link_drops(process: LinkbridgeProcess) -> dict[str, int]:
    """Every drop the link side of `process` counted, over all its layers (status)."""
    return drops_in(tunnel_status(process)["link_side"])


def drops_in(link_side: dict[str, Any]) -> dict[str, int]:
    """Every drop a status document's link side counted, over all its layers."""
    found: dict[str, int] = {}

    def walk(counters: dict[str, Any]) -> None:
        for reason, count in counters.get("drops", {}).items():
            found[reason] = found.get(reason, 0) + count
        if isinstance(counters.get("frames"), dict):
            walk(counters["frames"])

    walk(link_side)
    return found


@contextlib.contextmanager
def two_link_tunnels(lab: TwoHosts, registry: LinkRegistry, first: str, second: str,
                     extra: list[str]
                     ) -> Iterator[tuple[LinkbridgeProcess, LinkbridgeProcess, list[str]]]:
    """Both tunnels over `first` and `second` (on a veth pair of its own), encrypted, with
    `extra` options; and host A's veth end of each link."""
    options = LabOptions(link=first, more_links=(second,), encrypt=True)
    with lab_run_tunnels(lab, options, registry, extra) as ((a, b), veths):
        yield a, b, veths


# the backup: 9600 bit/s, 100-byte frames, and a queue of 2 s (the sim's default
# 1000 frames would hold what the failover sent it for over 10 s after the return)
BACKUP = "sim:?rate=9600&mtu=100&limit=24"
QUIET = 2.0  # s: more than a 1500-byte packet takes in 100-byte fragments at 9600 bit/s


def settled_gap(lab: TwoHosts) -> int:
    """What B's device took in less what A's sent out, once neither count moved for QUIET
    seconds: nothing of A's is in flight then (the slow backup may still be sending segments
    of the transfer it carried, each over a second on the air)."""
    sent, received = settled(lambda: (link_stats(lab.a, TUN_NAME)["tx_packets"],
                                      link_stats(lab.b, TUN_NAME)["rx_packets"]),
                             QUIET, 30, "the tunnel's devices")
    return received - sent


def forged_gets_nothing_in(lab: TwoHosts, b: LinkbridgeProcess) -> None:
    """Frames sent to B's primary link from A's link address and port (a raw socket in A,
    outside the tunnel): sequence headers around forged transport data and plain IP, bare
    frames and bad probes. Not one reaches B's device; the tunnel still carries pings."""
    rng = random.Random(7)
    bodies = [bytes.fromhex("4500001c0001000040017a") + bytes(17),
              *(bytes([0xB0]) + rng.randbytes(60) for _ in range(20))]
    frames = [*(data_frame(rng.getrandbits(32), body) for body in bodies), *bodies,
              PROBE_FRAME[:2] + b"\x09", *(rng.randbytes(rng.randrange(1, 100)) for _ in range(50))]
    before = settled_gap(lab)
    with netns.inside(lab.a):
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    with raw:
        for frame in frames:
            raw.sendto(udp(payload=frame, sport=UDP_LAB_PORT, dport=UDP_LAB_PORT), (UNDERLAY[1], 0))
    forged_in = settled_gap(lab) - before
    assert forged_in <= 0, f"{forged_in} {link_drops(b)} {tunnel_status(b)['tunnel']}"
    found = link_drops(b)
    refused = (drops.AUTH, drops.UNKNOWN_KEY, drops.NOT_ENCRYPTED)
    assert sum(found.get(reason, 0) for reason in refused) >= len(bodies), found
    assert found.get(drops.LINK_PROBE_MALFORMED, 0) >= 1, found
    assert ping(lab.a, OVERLAY[1], count=5, interval=0.02, timeout=0.5).received == 5


def test_failover_moves_within_a_second_and_returns_after_the_hold_time(
        lab: TwoHosts, registry: LinkRegistry) -> None:
    """The issue's pair: udp: primary, a narrow slow backup (9600 bit/s, 100-byte frames:
    packets are fragmented on it only); the hooks run per link with the link's name."""
    hooks = ["--on-link-down", "echo gone $LINKBRIDGE_LINK",
             "--on-link-up", "echo back $LINKBRIDGE_LINK"]
    with two_link_tunnels(lab, registry, "udp", BACKUP,
                          ["--keepalive", "0.2", "--hold-time", "2", *hooks]) as (a, b, _):
        with ping_stream(lab.a, OVERLAY[1], count=140, interval=0.05, timeout=0.1) as result:
            time.sleep(1.5)
            set_veth(lab.a, lab.veth_a, up=False)
            cut = time.perf_counter()
            transfer = []  # TCP across the cut, the backup and the return
            mover = threading.Thread(target=lambda: transfer.append(
                tcp_transfer(lab.b, OVERLAY[1], lab.a, 300_000, timeout=20)))
            mover.start()
            time.sleep(2.0)
            assert [link["active"] for link in tunnel_status(a)["links"]] == [False, True]
            set_veth(lab.a, lab.veth_a, up=True)
            restored = time.perf_counter()
            time.sleep(1.0)  # up again, but not yet for the hold time: still on the backup
            held = [(link["state"], link["active"]) for link in tunnel_status(a)["links"]]
            assert held == [("up", False), ("up", True)], held
        mover.join()
        [pings] = result
        [moved] = transfer
        assert moved.received_bytes == 300_000 and moved.intact, moved
        print(f"failover: 300 kB over TCP across the cut and the return in {moved.seconds:.1f} s")
        status = tunnel_status(a)
        states = [(link["state"], link["active"]) for link in status["links"]]
        assert states == [("up", True), ("up", False)], status["links"]
        assert status["link_switches"] == 2, status
        reply = first_reply(pings, cut)
        assert reply is not None and reply - cut <= 1.0, (cut, pings.timeline)
        switch = reply - cut
        print(f"failover: first reply {switch:.3f} s after the cut; "
              f"{pings.sent - pings.received} of {pings.sent} pings lost")
        # back on the primary, which has been up since its return, for more than the hold time
        assert 2.0 <= status["links"][0]["state_for_s"] <= time.perf_counter() - restored
        for side in (a, b):
            found = link_drops(side)
            assert not found.get(drops.REPLAY) and not found.get(drops.AUTH), found
        primary = status["links"][0]["name"]
        forged_gets_nothing_in(lab, b)
    said = re.findall(r"on-link-(?:up|down): (\w+ \S+)", a.output())
    assert said[-2:] == [f"gone {primary}", f"back {primary}"], said
    assert said.count(f"gone {primary}") == 1 and len(said) == 4, said  # both links came up


def test_duplicate_over_two_lossy_links_delivers_each_packet_once(
        lab: TwoHosts, registry: LinkRegistry, tmp_path: Path) -> None:
    run = duplicate_run(lab, registry, 1000, DUPLICATE_SEEDS, tmp_path)
    found = drops_in(run.status_b["link_side"])
    print(f"duplicate: {run.got} of {run.sent} packets delivered to B's TUN, B's drops "
          f"{found}\n{run.budget()}")
    assert run.got <= run.sent  # never a copy into the device
    assert min(run.lost) >= 0.07 * run.sent  # each link alone loses about a tenth
    # every packet that a link carried reached the device: only those both links' draws lost
    # are missing (the traces say which), so this holds whatever the draws
    assert run.elsewhere == 0 and run.both > 0
    # these seeds lose 0.7-1.3% on both over any 1000 frames (the figure: >= 98.5%)
    assert run.got >= 0.985 * run.sent
    assert found.get(drops.DUPLICATE, 0) >= 0.6 * run.sent
    assert not found.get(drops.REPLAY), found


def test_a_flapping_primary_moves_traffic_once_each_way(
        lab: TwoHosts, registry: LinkRegistry, long_run: bool) -> None:
    """The issue's figure with --long (about 45 s): hold time 10 s, the primary down and up
    every 2 s for 30 s: traffic moves to the backup once, and back once, <= 10.5 s after the
    primary's last return. Without --long the same in short: hold time 3 s, down and up every
    0.8 s (each down longer than the 0.45 s link timeout) for 6.4 s, back within 5 s."""
    # the short run's slack covers a loaded machine's delays in the probes and status reads
    hold, period, cycles, slack = (10.0, 2.0, 8, 0.5) if long_run else (3.0, 0.8, 4, 2.0)
    with two_link_tunnels(lab, registry, "udp", BACKUP,
                          ["--keepalive", "0.2", "--hold-time", f"{hold:g}"]) as (a, _, _):
        assert ping(lab.a, OVERLAY[1], count=5, interval=0.05, timeout=0.5).received == 5
        for _ in range(cycles):
            set_veth(lab.a, lab.veth_a, up=False)
            time.sleep(period)
            set_veth(lab.a, lab.veth_a, up=True)
            last_return = time.perf_counter()
            time.sleep(period)
        while not tunnel_status(a)["links"][0]["active"]:
            assert time.perf_counter() - last_return <= hold + slack
            ping(lab.a, OVERLAY[1], count=1, timeout=0.1)  # traffic, so failover decides
            time.sleep(0.05)
        back = time.perf_counter() - last_return
        print(f"flapping primary: back on it {back:.2f} s after its last return")
        assert back >= hold
        assert tunnel_status(a)["link_switches"] == 2


TEN_MBIT = "sim:?rate=10mbit&limit=100"


def test_balance_over_two_links_carries_one_tcp_transfer_faster_than_one_link(
        lab: TwoHosts, registry: LinkRegistry) -> None:
    """The issue's balance pair: two 10 Mbit/s sim: links; one TCP transfer spread over both
    (each packet on one link, put back in order at B) beats one link's rate, intact; then
    with the second link cut, traffic stays on the first (a dead link leaves the balance).
    The 1.6x figure side by side with one link: `python -m benchmarks multilink`."""
    with two_link_tunnels(lab, registry, TEN_MBIT, TEN_MBIT,
                          ["--link-policy", "balance", "--keepalive", "0.2"]) as (a, b, veths):
        assert ping(lab.a, OVERLAY[1], count=5, interval=0.05, timeout=0.5).received == 5
        moved = tcp_transfer(lab.b, OVERLAY[1], lab.a, 6_000_000, timeout=20)
        assert moved.received_bytes == 6_000_000 and moved.intact, moved
        rate = moved.received_bytes * 8 / moved.seconds / 1e6
        sent = [link["counters"]["tx_packets"] for link in tunnel_status(a)["links"]]
        reordering = {key: tunnel_status(b)[key] for key in ("reordered", "reorder_gaps")}
        print(f"balance: 6 MB over TCP at {rate:.2f} Mbit/s over two 10 Mbit/s links, "
              f"A's links sent {sent} frames, B's resequencing {reordering}")
        assert min(sent) >= 0.3 * sum(sent), sent  # both links carried the transfer
        assert rate >= 11.0  # more than one link can carry (10 Mbit/s, less its overhead)
        set_veth(lab.a, veths[1], up=False)
        time.sleep(1.0)  # the link timeout (0.45 s) and more
        assert [link["active"] for link in tunnel_status(a)["links"]] == [True, False]
        before = [link["counters"]["tx_packets"] for link in tunnel_status(a)["links"]]
        start = time.perf_counter()
        assert ping(lab.a, OVERLAY[1], count=20, interval=0.02, timeout=0.5).received == 20
        after = [link["counters"]["tx_packets"] for link in tunnel_status(a)["links"]]
        probes = (time.perf_counter() - start) / 0.2 + 2  # the cut link is still probed
        assert after[0] - before[0] >= 20 and after[1] - before[1] <= probes, (before, after)


def shape(host: str, veth: str, rate: str) -> None:
    """Limit what `host` sends on `veth` to `rate` (tbf, outside the tunnel processes)."""
    with netns.inside(host):
        subprocess.run(["tc", "qdisc", "replace", "dev", veth, "root", "tbf", "rate", rate,
                        "burst", "8kb", "latency", "40ms"], check=True)


def sent_bytes(process: LinkbridgeProcess) -> list[int]:
    return [link["counters"]["tx_bytes"] for link in tunnel_status(process)["links"]]


def measured_apart(process: LinkbridgeProcess) -> bool:
    """Whether both links of `process` have a measured rate, the second's the higher."""
    rates = [link["measured_rate_bps"] for link in tunnel_status(process)["links"]]
    return None not in rates and rates[1] > 1.5 * rates[0]


def test_balance_over_links_without_figures_splits_by_their_measured_rates(
        lab: TwoHosts, registry: LinkRegistry) -> None:
    """Two udp: links (no figures) shaped to 1 and 3 Mbit/s under the tunnel: the probes'
    reports measure their rates and a TCP transfer splits about 1:3 (with no measurement both
    count as 100 Mbit/s and the first, preferred on a tie, carries more than half); then the
    second slows to 0.5 Mbit/s and loses its share (2:1). (Balance spreads only once the
    fastest link is busy: the links are slow enough that a loaded machine's TCP still fills
    both; at 2 and 6 Mbit/s a transfer held to 5.8 Mbit/s by a loaded CPU sent 93% on the
    faster link.)"""
    with two_link_tunnels(lab, registry, "udp", "udp",
                          ["--link-policy", "balance", "--keepalive", "0.2"]) as (a, _, veths):
        shape(lab.a, veths[0], "1mbit")
        shape(lab.a, veths[1], "3mbit")
        assert ping(lab.a, OVERLAY[1], count=5, interval=0.05, timeout=0.5).received == 5
        # the first reports of a backlog measure the links (about half a second of a
        # transfer; on a loaded machine the first transfer may end before both had one)
        deadline = time.monotonic() + 20
        while not measured_apart(a) and time.monotonic() < deadline:
            assert tcp_transfer(lab.b, OVERLAY[1], lab.a, 300_000, timeout=20).intact
        assert measured_apart(a), tunnel_status(a)["links"]
        shares = []
        for size in (900_000, 600_000):
            before = sent_bytes(a)
            moved = tcp_transfer(lab.b, OVERLAY[1], lab.a, size, timeout=20)
            assert moved.received_bytes == size and moved.intact, moved
            sent = [after - then for after, then in zip(sent_bytes(a), before, strict=True)]
            rates = [link["measured_rate_bps"] for link in tunnel_status(a)["links"]]
            shares.append(sent[0] / sum(sent))
            print(f"balance by measured rates: {size} bytes at "
                  f"{size * 8 / moved.seconds / 1e6:.2f} Mbit/s, A's links sent {sent} bytes "
                  f"(the first {shares[-1]:.0%}), measured {rates} bit/s")
            shape(lab.a, veths[1], "500kbit")
        # 1:3 is 25%; unmeasured, the first link (preferred on a tie) would carry over half
        assert 0.1 <= shares[0] <= 0.45, shares
        # 2:1 is 67%, reached after the first reports of the slowdown (unmeasured: no change)
        assert shares[1] >= max(0.45, shares[0] + 0.15), shares


def test_the_lab_cuts_and_restores_a_link_and_reports_the_failover_and_the_return(
        root: None, run_dir: Path, registry: LinkRegistry) -> None:
    """`linkbridge lab --link udp --link BACKUP --fail-link 1@1.5 --restore-link 1@3`: the
    report says when tunnel A saw each change, when traffic moved, and what the pings lost."""
    report = run_lab(LabOptions(link="udp", more_links=(BACKUP,), keepalive=0.2, hold_time=2.0,
                                count=120, interval=0.05, transfer_bytes=50_000,
                                fail_link=("1@1.5",), restore_link=("1@3",)), registry)
    lines = [line.strip() for line in report.comparison if line.strip().startswith("link 1 ")]
    print("\n".join(lines))
    cut, restored = lines
    seconds = [float(figure) for figure in re.findall(r"after (\d+\.\d+) s", cut)]
    assert cut.startswith("link 1 cut at 1.5 s: A saw it down after"), cut
    assert "traffic on link 2 after" in cut and len(seconds) == 3, cut
    assert 0.2 <= seconds[0] <= 1.0 and seconds[2] <= 1.5, cut  # link timeout 0.45 s, less a probe
    assert restored.startswith("link 1 restored at 3 s: A saw it up after"), restored
    back = float(re.findall(r"traffic on link 1 after (\d+\.\d+) s", restored)[0])
    assert 2.0 <= back <= 3.5, restored  # the hold time, not before
    assert report.transfer is not None and report.transfer.ok, report.transfer


def test_clamp_mss_gives_tcp_the_narrow_links_segment_size(
        lab: TwoHosts, registry: LinkRegistry) -> None:
    """udp: and a 100-byte backup with --clamp-mss: a connection A -> B across the tunnel
    (MTU about 1450) settles on the MSS that fits the backup's frame whole, both ends. The
    clamp counts the links up when the SYN crosses (docs/multilink.md): the connection opens
    once both sides see both links up (on a loaded machine the backup's first keepalive came
    after the SYN once, and the MSS stayed 1393)."""
    with two_link_tunnels(lab, registry, "udp", BACKUP, ["--keepalive", "0.2", "--clamp-mss"]
                          ) as (a, b, _):
        assert ping(lab.a, OVERLAY[1], count=3, interval=0.05, timeout=1.0).received == 3
        wait_for(lambda: all(link["state"] == "up" for side in (a, b)
                             for link in tunnel_status(side)["links"]), 10,
                 lambda: f"both links up {[tunnel_status(side)['links'] for side in (a, b)]}")
        with netns.inside(lab.b):
            server = socket.create_server((OVERLAY[1], 5202))
        with netns.inside(lab.a):
            client = socket.create_connection((OVERLAY[1], 5202), timeout=5)
        with server, client, server.accept()[0] as accepted:
            segments = [end.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
                        for end in (client, accepted)]
        print(f"clamp-mss: MSS {segments} (A's tunnel MTU {tunnel_status(a)['mtu']})")
    largest = 100 - DATA_HEADER - 40  # the backup's frame less the sequence and TCP/IP headers
    assert all(0 < segment <= largest for segment in segments), segments
