"""sim: links and the --via sim: wrapper on real loopback sockets: release timing, order,
counted drops, traces written by a live link and replayed, no busy-waiting."""

from __future__ import annotations

import json
import threading
import time

from linkbridge_sim.links import SimWrapper

from linkbridge.plugin import free_port
from linkbridge.plugin.link import Link
from linkbridge.plugin.registry import LinkRegistry, get_plugin_manager


def sim_pair(options_a: str, options_b: str = "") -> tuple[Link, Link]:
    registry = LinkRegistry(get_plugin_manager())
    port_a, port_b = free_port(), free_port()
    a = registry.create_link(f"sim:127.0.0.1:{port_b}?bind=127.0.0.1:{port_a}&{options_a}")
    b = registry.create_link(f"sim:127.0.0.1:{port_a}?bind=127.0.0.1:{port_b}&{options_b}")
    a.open()
    b.open()
    return a, b


def collect(link: Link, count: int, timeout: float = 5.0) -> list[tuple[float, bytes]]:
    got: list[tuple[float, bytes]] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        for packet in link.receive(0.1):
            got.append((time.monotonic(), packet))
    return got


def test_delayed_packets_arrive_on_time_in_order(tmp_path: object) -> None:
    """Each packet is scheduled 80 ms out (the trace), none arrives early, order is kept. How
    late a loaded machine delivers is not asserted here (the lab tests measure the mean)."""
    trace = f"{tmp_path}/delay.jsonl"
    a, b = sim_pair(f"delay=80ms&seed=1&trace={trace}")
    try:
        start = time.monotonic()
        for index in range(20):
            a.send(index.to_bytes(2, "big"))
        got = collect(b, 20)
        assert [packet for _, packet in got] == [i.to_bytes(2, "big") for i in range(20)]
        assert got[0][0] - start >= 0.080  # the first release has no early-wake lead yet
        b.send(b"back")  # B adds no delay
        assert collect(a, 1)[0][1] == b"back"
        a.close()  # flushes the trace
        with open(trace) as file:
            records = [json.loads(line) for line in file][1:]
        assert [r["delays"] for r in records] == [[0.08]] * 20
    finally:
        a.close()
        b.close()


def test_rate_limit_spaces_packets_and_tail_drops_beyond_the_limit() -> None:
    a, b = sim_pair("rate=400kbit&limit=10&seed=1")  # 1000-byte packet = 20 ms
    try:
        for _ in range(15):
            a.send(bytes(1000))
        got = collect(b, 10, timeout=3.0)
        assert len(got) == 10
        span = got[-1][0] - got[0][0]
        assert span >= 0.9 * 9 * 0.020  # never faster than the rate (slower: a busy machine)
        assert collect(b, 1, timeout=0.3) == []
        assert a.counters.drops["sim_queue_full"] == 5
        assert a.counters.tx_packets == 10
    finally:
        a.close()
        b.close()


def test_loss_and_mtu_drops_are_counted_by_reason() -> None:
    a, b = sim_pair("loss=30%&mtu=200&seed=42")
    try:
        for _ in range(1000):
            a.send(bytes(100))
        a.send(bytes(201))
        lost = a.counters.drops["sim_loss"]
        got = collect(b, 1000 - lost, timeout=2.0)
        assert 250 < lost < 350
        assert len(got) == 1000 - lost
        assert a.counters.drops["sim_mtu"] == 1
    finally:
        a.close()
        b.close()


def test_wrapper_over_udp_impairs_what_it_sends(tmp_path: object) -> None:
    registry = LinkRegistry(get_plugin_manager())
    port_a, port_b = free_port(), free_port()
    trace = f"{tmp_path}/via.jsonl"
    a = registry.create_link(f"udp:127.0.0.1:{port_b}?bind=127.0.0.1:{port_a}",
                             via=[f"sim:?corrupt=100%&duplicate=50%&seed=3&trace={trace}"])
    b = registry.create_link(f"udp:127.0.0.1:{port_a}?bind=127.0.0.1:{port_b}")
    a.open()
    b.open()
    try:
        for _ in range(100):
            a.send(bytes(64))
        assert isinstance(a, SimWrapper)
        duplicated = a.sender.events["duplicated"]
        got = collect(b, 100 + duplicated, timeout=2.0)
        assert len(got) == 100 + duplicated and 30 < duplicated < 70
        assert sum(packet != bytes(64) for _, packet in got) == 100  # first copies corrupted
        a.close()  # flushes the trace
        with open(trace) as file:
            records = [json.loads(line) for line in file][1:]
        assert [r["i"] for r in records] == list(range(100))
        assert sum(bool(r.get("duplicated")) for r in records) == duplicated
    finally:
        a.close()
        b.close()


def test_a_live_trace_replays_to_the_same_decisions(tmp_path: object) -> None:
    trace = f"{tmp_path}/live.jsonl"
    options = "loss=20%&delay=5ms&jitter=4ms&distribution=normal&corrupt=10%"
    sent = [i.to_bytes(4, "big") * 8 for i in range(300)]

    def delivered(more: str) -> list[bytes]:
        a, b = sim_pair(f"{options}&{more}")
        try:
            for packet in sent:
                a.send(packet)
            return sorted(p for _, p in collect(b, 300 - a.counters.drops["sim_loss"]))
        finally:
            a.close()
            b.close()

    first = delivered(f"seed=9&trace={trace}")
    second = delivered(f"seed=1234&replay={trace}")
    assert 200 < len(first) < 280
    assert first == second  # same packets lost, same bits flipped


def release_thread_cpu() -> float:
    """CPU seconds the sim's release thread(s) used so far: a waiting thread uses none, however
    busy the machine is; a spinning one accumulates it."""
    return sum(time.clock_gettime(time.pthread_getcpuclockid(thread.ident or 0))
               for thread in threading.enumerate() if thread.name.endswith("-release"))


def test_waiting_for_a_release_does_not_spin() -> None:
    a, b = sim_pair("delay=1s&seed=1")
    try:
        a.send(b"later")
        cpu = release_thread_cpu()
        time.sleep(0.5)
        assert release_thread_cpu() - cpu < 0.005
        assert collect(b, 1, timeout=2.0)[0][1] == b"later"
    finally:
        a.close()
        b.close()


def test_scheduler_delivers_in_time_order_and_drops_pending_on_close() -> None:
    from linkbridge_sim.impairment import Release
    from linkbridge_sim.scheduler import LEAD_LIMIT, ReleaseScheduler

    delivered: list[bytes] = []
    scheduler = ReleaseScheduler("t", lambda release: delivered.append(release.packet))
    now = time.monotonic()
    scheduler.submit([Release(now + 0.15, b"c"), Release(now + 10, b"never")])
    scheduler.submit([Release(now + 0.05, b"a")])  # earlier: wakes the thread
    scheduler.submit([Release(now + 0.10, b"b")])
    deadline = time.monotonic() + 2
    while len(delivered) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert delivered == [b"a", b"b", b"c"]
    assert scheduler.pending == 1 and 0 <= scheduler.lead <= LEAD_LIMIT
    scheduler.close()
    assert delivered == [b"a", b"b", b"c"]
