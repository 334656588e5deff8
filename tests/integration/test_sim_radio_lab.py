"""sim: as a radio, end to end between two lab namespaces with real tunnels: the half-duplex
channel through the medium process (ping RTT against the analytic figure, airtime against the
tunnels' own counters, collisions under two saturating senders, the duty cycle, TCP half vs full
duplex side by side) and a Mahimahi trace driving the rate."""

from __future__ import annotations

import re
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from linkbridge_sim.medium import DEFAULT_PORT, query_stats

from linkbridge.lab import netns
from linkbridge.lab.options import LabOptions
from linkbridge.lab.probes import ping
from linkbridge.lab.report import LabReport
from linkbridge.lab.run import TUN_NAME, lab_tunnels, run_lab
from linkbridge.lab.topology import OVERLAY, UNDERLAY, TwoHosts, link_stats
from linkbridge.plugin.registry import LinkRegistry

RATE = 19_200.0
TXDELAY, TXTAIL = 0.020, 0.010
FLOOD_PORT = 5410


def medium_stations(lab: TwoHosts) -> dict[str, dict[str, Any]]:
    """The medium's counters per lab side ('A', 'B'), asked from inside host A."""
    with netns.inside(lab.a):
        stats = query_stats((UNDERLAY[0], DEFAULT_PORT))
    by_host = {key.rsplit(":", 1)[0]: value for key, value in stats["stations"].items()}
    return {"A": by_host[UNDERLAY[0]], "B": by_host[UNDERLAY[1]]}


def test_half_duplex_ping_rtt_and_airtime_match_the_model(lab: TwoHosts,
                                                          registry: LinkRegistry) -> None:
    """persist=255, no competing traffic: RTT = serialisation both ways + txdelay twice + one
    txtail (the reply waits for the request's tail), within 5% over 50 pings (their 10th
    percentile); the medium's airtime equals what the tunnels' packet and byte counters imply."""
    link = (f"sim:?duplex=half&rate={RATE:g}&persist=255&txdelay={TXDELAY * 1e3:g}ms"
            f"&txtail={TXTAIL * 1e3:g}ms&seed=4")
    with lab_tunnels(lab, link, registry=registry):
        time.sleep(0.5)  # the tunnels' own start-up packets (IPv6) are on the air by now
        before = medium_stations(lab), tunnel_counters(lab)
        result = ping(lab.a, OVERLAY[1], count=50, interval=0.02, timeout=1.0)
        time.sleep(0.3)  # let the last reply's tail end
        after = medium_stations(lab), tunnel_counters(lab)
    analytic = 1e3 * (2 * (TXDELAY + 84 * 8 / RATE) + TXTAIL)
    rtts = result.rtts_ms
    fast, median = sorted(rtts)[len(rtts) // 10], statistics.median(rtts)
    print(f"rtt 10th percentile {fast:.2f} ms, median {median:.2f} ms over {len(rtts)} "
          f"pings, analytic {analytic:.2f} ms")
    assert len(rtts) >= 47
    # nothing in the model is random here, and a loaded machine's stalls only ever add time
    # (a CI run's median was 5.4% late while the workers started beside the VM's boot): the
    # 10th percentile within 5% (so at most a tenth of the pings beat the model by more)
    assert abs(fast - analytic) / analytic < 0.05
    for side, other in (("A", "B"), ("B", "A")):
        station = {key: after[0][side][key] - before[0][side][key]
                   for key in ("sent", "delivered", "collisions", "airtime")}
        sent = {key: after[1][side][key] - before[1][side][key]
                for key in ("tx_packets", "tx_bytes")}
        received = after[1][other]["rx_packets"] - before[1][other]["rx_packets"]
        print(side, station, sent, received)
        assert station["sent"] == sent["tx_packets"]
        expected = sent["tx_bytes"] * 8 / RATE + sent["tx_packets"] * (TXDELAY + TXTAIL)
        assert station["airtime"] == pytest.approx(expected, rel=1e-6)
        assert station["delivered"] + station["collisions"] == station["sent"]
        # what the medium says it delivered is what the other tunnel received
        assert station["delivered"] == received


def tunnel_counters(lab: TwoHosts) -> dict[str, dict[str, int]]:
    return {"A": link_stats(lab.a, TUN_NAME), "B": link_stats(lab.b, TUN_NAME)}


@pytest.fixture
def flood_sockets(lab: TwoHosts) -> Iterator[tuple[socket.socket, socket.socket]]:
    with netns.inside(lab.a):
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with netns.inside(lab.b):
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with a, b:
        a.bind(("0.0.0.0", FLOOD_PORT))  # the tunnels' addresses come later
        b.bind(("0.0.0.0", FLOOD_PORT))
        yield a, b


def test_two_saturating_senders_collide_and_stay_below_the_line_rate(
        lab: TwoHosts, registry: LinkRegistry,
        flood_sockets: tuple[socket.socket, socket.socket]) -> None:
    """Both sides send UDP at twice the line rate for 4 s: collisions happen on both, are
    counted, and what gets through both ways together stays below one direction's rate."""
    a, b = flood_sockets
    payload, seconds = 472, 4.0  # 500-byte IP packets
    received = [0, 0]
    done = threading.Event()

    def drain(sock: socket.socket, slot: int) -> None:
        sock.settimeout(0.1)
        while not done.is_set():
            try:
                received[slot] += len(sock.recv(2048)) + 28
            except TimeoutError:
                continue

    def flood(sock: socket.socket, peer: str) -> None:
        gap = (payload + 28) * 8 / (2 * RATE)
        start = time.monotonic()
        count = 0
        while time.monotonic() - start < seconds:
            sock.sendto(bytes(payload), (peer, FLOOD_PORT))
            count += 1
            time.sleep(max(0.0, start + count * gap - time.monotonic()))

    with lab_tunnels(lab, f"sim:?duplex=half&rate={RATE:g}&persist=63&slottime=10ms"
                          "&txdelay=5ms&limit=20&seed=2", registry=registry,
                     extra_args=("--queue", "off")):  # the channel's own queue, saturated
        drains = [threading.Thread(target=drain, args=(b, 0)),
                  threading.Thread(target=drain, args=(a, 1))]
        floods = [threading.Thread(target=flood, args=(a, OVERLAY[1])),
                  threading.Thread(target=flood, args=(b, OVERLAY[0]))]
        started = time.monotonic()
        for thread in (*drains, *floods):
            thread.start()
        for thread in floods:
            thread.join(30)
        time.sleep(1.0)  # what is still queued keeps arriving
        done.set()
        for thread in drains:
            thread.join(5)
        elapsed = time.monotonic() - started
        stations = medium_stations(lab)
    goodput = sum(received) * 8 / elapsed
    print(f"goodput both ways {goodput:.0f} bit/s of a {RATE:.0f} bit/s channel; collisions "
          f"A {stations['A']['collisions']}, B {stations['B']['collisions']}; queue drops "
          f"A {stations['A']['queue_full']}, B {stations['B']['queue_full']}")
    assert stations["A"]["collisions"] > 0 and stations["B"]["collisions"] > 0
    assert stations["A"]["queue_full"] > 0 and stations["B"]["queue_full"] > 0
    assert received[0] > 0 and received[1] > 0
    assert goodput < RATE


def report_row(report: LabReport, label: str) -> list[str]:
    """The configured and measured columns and the note of one report row."""
    row = next(line for line in report.comparison if line.strip().startswith(label))
    return re.split(r"\s{2,}", row.strip()[len(label):].strip(), maxsplit=2)


def test_tcp_over_half_duplex_beside_full_duplex(root: None, registry: LinkRegistry) -> None:
    """One run, two labs at the same rate: TCP's data and acks share the air in half duplex,
    so its goodput is below full duplex's (and below the rate)."""
    reports = {duplex: run_lab(LabOptions(link=f"sim:?duplex={duplex}&rate={RATE:g}&seed=3",
                                          count=3, interval=0.2, transfer_bytes=6000),
                               registry)
               for duplex in ("full", "half")}
    goodput = {duplex: report.transfer.mbit_per_s * 1e6 for duplex, report in reports.items()}
    print(f"TCP over {RATE:.0f} bit/s: full duplex {goodput['full']:.0f} bit/s, "
          f"half duplex {goodput['half']:.0f} bit/s")
    assert all(report.transfer.intact for report in reports.values())
    assert goodput["half"] < goodput["full"]
    assert goodput["half"] < RATE
    collisions = report_row(reports["half"], "collisions A")
    assert collisions[0] == "persist 63" and collisions[1].isdigit()


def test_lab_report_over_lora_under_a_duty_cycle(root: None, registry: LinkRegistry) -> None:
    """LoRa SF7/500 kHz with 25% of any 4 s: frames wait for the duty cycle (counted) and no
    4 s window holds more than 1 s of airtime; the report's RTT uses Semtech's airtime."""
    link = "sim:?duplex=half&sf=7&bw=500k&duty=25%&duty_window=4s&seed=5"
    # --queue off: the radio's own queue meets the duty cycle (the queue would pace for it)
    report = run_lab(LabOptions(link=link, count=5, interval=0.3, queue="off"), registry)
    assert report.transfer.intact
    configured, measured, note = report_row(report, "airtime A")
    found = re.search(r"peak ([0-9.]+)% of a 4 s window", note)
    assert configured == "<= 25.00%" and found is not None, note
    assert 0 < float(found.group(1)) <= 25.0
    assert float(measured.rstrip("%")) <= 25.0
    waits = report_row(report, "duty wait A")
    assert int(waits[1]) > 0, waits
    # 84-byte echo packets at SF7/500 kHz: Tsym 0.256 ms, (8 + 4.25) + 8 + ceil(688 / 28) * 5
    # = 145.25 symbols = 37.184 ms; plus persist 63's mean deferral, 3 slots of 10 ms, each way
    rtt = report_row(report, "rtt")
    assert rtt[0] == f"{2 * (0.030 + 0.037184) * 1e3:.2f} ms", rtt


# A trace of our own: a 250 ms loop of one opportunity every 2 ms for 100 ms, one every 10 ms
# for 100 ms, then a 50 ms outage and one at its end (61 per loop, about 2.9 Mbit/s on average).
TRACE = list(range(2, 101, 2)) + list(range(110, 201, 10)) + [250]


def test_a_mahimahi_trace_drives_the_rate_through_real_tunnels(
        lab: TwoHosts, registry: LinkRegistry, tmp_path: Path,
        flood_sockets: tuple[socket.socket, socket.socket]) -> None:
    """A saturating UDP stream A -> B: in the loops of the trace B receives their capacity
    (61 opportunities of 1504 bytes per 250 ms): most loops within max(5%, 1504 B)."""
    trace = tmp_path / "uplink.trace"
    trace.write_text("".join(f"{stamp}\n" for stamp in TRACE))
    a, b = flood_sockets
    payload = 1172  # 1200-byte IP packets: within the tunnel MTU, 4 to 5 per opportunity pair
    arrivals: list[tuple[float, int]] = []

    def drain() -> None:
        b.settimeout(1.0)
        try:
            while True:
                arrivals.append((time.monotonic(), len(b.recv(2048)) + 28))
        except (TimeoutError, OSError):
            return

    with lab_tunnels(lab, f"sim:?ab.rate_trace={trace}&limit=200&seed=1", registry=registry):
        receiver = threading.Thread(target=drain)
        receiver.start()
        per_loop = len(TRACE) * 1504
        gap = (payload + 28) / (2 * per_loop / 0.250)  # offer twice the trace's mean rate
        start = time.monotonic()
        for count in range(int(4.5 / gap)):
            a.sendto(bytes(payload), (OVERLAY[1], FLOOD_PORT))
            time.sleep(max(0.0, start + (count + 1) * gap - time.monotonic()))
        receiver.join(30)
    first = arrivals[0][0] + 0.55  # loop -1, the one before, starts once the queue holds a backlog
    loops = int((arrivals[-1][0] - 0.3 - first) / 0.250)
    assert loops >= 12
    off = []  # each loop's bytes less its capacity, loops -1 to `loops` (the edges: neighbours)
    for loop in range(-1, loops + 1):
        start = first + loop * 0.250
        got = sum(size for at, size in arrivals if start <= at < start + 0.250)
        print(f"loop {loop}: {got} bytes, capacity {per_loop}")
        off.append(got - per_loop)
    # a host stall across a loop's end holds bytes back that the sim then sends at once, in the
    # next loop: a surplus in one loop and the same deficit in its neighbour. So a loop is off
    # by its own deviation or by the pair's, whichever is less: most loops within 5% (or one
    # opportunity), none beyond 25%; and all of them together (less what stalls moved across
    # the edges) within 2% of the trace's capacity
    judged = [min(abs(off[k]), abs(off[k] + off[k - 1]), abs(off[k] + off[k + 1]))
              for k in range(1, loops + 1)]
    close = [d <= max(0.05 * per_loop, 1504) for d in judged]
    assert sum(close) >= 0.8 * loops, off
    assert max(judged) <= 0.25 * per_loop, off
    total = sum(off[1:-1]) - moved(off[1], off[0]) - moved(off[-2], off[-1])
    assert abs(total) <= 0.02 * per_loop * loops, off


def moved(inside: int, outside: int) -> int:
    """What a stall moved across an edge of the judged loops, into the loop inside it (> 0) or
    out of it (< 0): deviations of opposite sign on both sides, the smaller."""
    if inside * outside >= 0:
        return 0
    return min(abs(inside), abs(outside)) * (1 if inside > 0 else -1)
