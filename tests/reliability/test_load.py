"""Load and soak, bounded and inside lab namespaces only: ordering, memory, many tunnels."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time

from linkbridge.lab import netns
from linkbridge.lab.probes import ping, tcp_transfer, udp_flood
from linkbridge.lab.processes import LinkbridgeProcess
from linkbridge.lab.run import lab_tunnels
from linkbridge.lab.topology import OVERLAY, TwoHosts
from linkbridge.plugin.registry import LinkRegistry
from tests.helpers.namespace_state import devices, routed

WINDOW = 256  # packets in flight: stays below every queue on the path, so "zero loss" is fair
SEQ_PORT = 5400
SO_RCVBUFFORCE = 33  # <linux/socket.h>; the socket module does not name it


def sequenced_stream(lab: TwoHosts, count: int) -> tuple[int, int, float]:
    """Send `count` numbered datagrams A -> B; return (received, out of order, seconds)."""
    with netns.inside(lab.b):
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with netns.inside(lab.a):
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    state = {"received": 0, "disorder": 0}

    def receive() -> None:
        expected = 0
        receiver.settimeout(2.0)
        with contextlib.suppress(TimeoutError):
            while expected < count:
                seq = int.from_bytes(receiver.recv(64)[:8], "big")
                if seq != expected:
                    state["disorder"] += 1
                expected = seq + 1
                state["received"] += 1

    with receiver, sender:
        receiver.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
        receiver.bind((OVERLAY[1], SEQ_PORT))
        thread = threading.Thread(target=receive, daemon=True)
        thread.start()
        start = time.perf_counter()
        for seq in range(count):
            while seq - state["received"] >= WINDOW and thread.is_alive():
                time.sleep(0.0002)
            sender.sendto(seq.to_bytes(8, "big") + bytes(24), (OVERLAY[1], SEQ_PORT))
        thread.join()
        return state["received"], state["disorder"], time.perf_counter() - start


def test_numbered_packets_arrive_all_and_in_order(lab: TwoHosts, long_run: bool,
                                                  registry: LinkRegistry) -> None:
    count = 1_000_000 if long_run else 100_000
    with lab_tunnels(lab, "udp", registry=registry):
        received, disorder, seconds = sequenced_stream(lab, count)
    print(f"{received} of {count} packets in order={disorder == 0} in {seconds:.1f} s "
          f"({received / seconds:.0f} packets/s)")
    assert received == count
    assert disorder == 0


def process_usage(pid: int) -> tuple[int, int]:
    """(RSS in KiB, open file descriptors) of a process."""
    with open(f"/proc/{pid}/status") as status:
        rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def test_mixed_soak_keeps_memory_and_fds_flat(lab: TwoHosts, long_run: bool,
                                              registry: LinkRegistry) -> None:
    duration = 300.0 if long_run else 15.0
    with lab_tunnels(lab, "udp", registry=registry) as sides:
        pids = [side.proc.pid for side in sides if side.proc is not None]
        ping(lab.a, OVERLAY[1], count=20, interval=0)  # warm up allocators and caches
        tcp_transfer(lab.b, OVERLAY[1], lab.a, 2_000_000)
        before = [process_usage(pid) for pid in pids]
        end = time.monotonic() + duration
        rounds = 0
        while time.monotonic() < end:
            assert ping(lab.a, OVERLAY[1], count=5, interval=0).received == 5
            assert tcp_transfer(lab.b, OVERLAY[1], lab.a, 2_000_000).intact
            udp_flood(lab.a, lab.b, OVERLAY[1], duration=0.3)
            rounds += 1
        after = [process_usage(pid) for pid in pids]
    for (rss0, fds0), (rss1, fds1) in zip(before, after, strict=True):
        print(f"{rounds} rounds in {duration:.0f} s: RSS {rss0} -> {rss1} KiB, "
              f"fds {fds0} -> {fds1}")
        assert fds1 == fds0
        assert rss1 - rss0 < 4096


def test_fifty_tunnels_up_at_once_and_down(lab: TwoHosts) -> None:
    count = 50
    tunnels = [
        LinkbridgeProcess(lab.a, ["tunnel", "--rx", str(10000 + 2 * i), "--tx",
                                  str(10001 + 2 * i), "--remote", f"198.19.{100 + i}.0/24",
                                  "--name", f"lbm{i}"], f"tunnel {i}")
        for i in range(count)
    ]
    start = time.monotonic()
    with contextlib.ExitStack() as stack:
        for tunnel in tunnels:  # all start at once, then each must report ready
            tunnel.launch()
            stack.callback(tunnel.stop)
        for tunnel in tunnels:
            tunnel.wait_ready(timeout=60)
        ready = time.monotonic() - start
        assert {f"lbm{i}" for i in range(count)} <= devices(lab.a)
        assert {f"198.19.{100 + i}.0/24" for i in range(count)} <= routed(lab.a)
        for tunnel in tunnels:  # all told to stop at once; the stack then waits for each
            assert tunnel.proc is not None
            tunnel.proc.send_signal(signal.SIGTERM)
    assert not {f"lbm{i}" for i in range(count)} & devices(lab.a)
    assert not {f"198.19.{100 + i}.0/24" for i in range(count)} & routed(lab.a)
    failed = [(t.proc and t.proc.returncode, t.output()) for t in tunnels
              if t.proc is None or t.proc.returncode != 0]
    assert not failed, failed[:3]
    print(f"{count} tunnels ready {ready:.1f} s after launch; all down, clean, "
          f"{time.monotonic() - start:.1f} s in all")
