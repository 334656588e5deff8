"""The netem cross-check: the same traffic through tc netem on the stock kernel (in the VM) and
through a `sim:` link (on the host), compared as distributions by tests/vm/test_vm.py.

Each case is a set of `sim:` options. The guest writes its own netem command line from those
options (`netem_command`, independent of the sim plugin's code), sends the traffic from one lab
namespace to the other over the veth with netem on it, and records what arrived: each datagram's
sequence number and one-way delay (kernel receive timestamp), corrupted frames counted below UDP
with an AF_PACKET capture, netem's own drop counter. `through_sim` sends the same datagrams (same
count, spacing and size as the qdisc counts them: the Ethernet frame) through a pair of real
`sim:` links on loopback and records the same things. `measure` turns a record into the figures
a case compares. The guest also measures an unimpaired timing floor in the same boot.
"""

from __future__ import annotations

import contextlib
import re
import socket
import struct
import subprocess
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from tests.helpers.distributions import median_gap

HEADER = struct.Struct("!IqI")  # sequence number, send time (ns), CRC-32 of the two
FRAME_OVERHEAD = 14 + 20 + 8  # Ethernet + IPv4 + UDP headers around a datagram's payload
PORT = 6000
FLOOR_PORT = 6001  # a delay case's own timing floor, sent beside it (see through_netem)
FLOOR_PRIORITY = 1  # SO_PRIORITY of the floor's datagrams: the prio qdisc's second band
SO_NO_CHECK = 11  # send UDP checksum 0: corrupted payloads are not dropped by the receiver
SO_TIMESTAMPNS = 35
SO_RCVBUFFORCE = 33
SO_PRIORITY = 12
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
QUIET = 1.0  # seconds without arrivals (after the last send plus the delay) ending a run


@dataclass(frozen=True)
class Case:
    """One impairment: `sim:` options, the traffic (count, spacing, payload) and what it shows."""

    options: str
    packets: int
    interval: float  # seconds between sends; 0 = back to back
    payload: int  # UDP payload bytes (the frame netem sees is FRAME_OVERHEAD bytes longer)
    measures: str  # loss | delay | duplicate | reorder | corrupt | rate

    @property
    def frame(self) -> int:
        return self.payload + FRAME_OVERHEAD


DELAY = "delay=40ms&jitter=10ms"
CASES = {
    "random_loss": Case("loss=5%", 8_000, 0.0, 64, "loss"),
    # asymmetric: swapping h and 1-h (or k and 1-k) moves the loss rate from ~10% to ~4%
    "gilbert_elliott": Case("gemodel=3%,25%,80%,2%", 10_000, 0.0, 64, "loss"),
    "four_state": Case("loss_state=3%,30%,20%,40%,1%", 10_000, 0.0, 64, "loss"),
    "delay_uniform": Case(DELAY, 800, 0.002, 64, "delay"),
    "delay_normal": Case(f"{DELAY}&distribution=normal", 800, 0.002, 64, "delay"),
    "delay_pareto": Case(f"{DELAY}&distribution=pareto", 800, 0.002, 64, "delay"),
    "delay_paretonormal": Case(f"{DELAY}&distribution=paretonormal", 800, 0.002, 64, "delay"),
    "duplicate": Case("duplicate=10%", 6_000, 0.0, 64, "duplicate"),
    "reorder": Case("delay=30ms&reorder=25%", 1_500, 0.001, 64, "reorder"),
    "corrupt": Case("corrupt=10%", 6_000, 0.0, 158, "corrupt"),
    # 200-byte frames at 160 kbit/s: 10 ms each, well above the VM's timing floor
    "rate": Case("rate=160kbit", 60, 0.0, 158, "rate"),
}
# The timing floor: a fixed delay (no randomness), spaced like the delay cases. Its spread is
# the timing noise of each side (in the VM mostly the emulated timer firing late), its median
# less FLOOR_DELAY_MS the constant offset of the measurement. In the VM each delay case also
# carries a floor of its own at the same time (every FLOOR_EVERY-th send, through a second netem
# with this fixed delay): the guest shares this machine with the suite's other tiers, and a
# stall of its emulated CPU delays both alike (a p99 of 84 ms where the delay ends at 50 came
# with a floor measured a minute earlier).
FLOOR_DELAY_MS = 20.0
FLOOR = Case("delay=20ms", 600, 0.002, 64, "delay")
FLOOR_EVERY = 2
WARM_UP = Case("", 50, 0.0, 64, "loss")  # unimpaired: resolves ARP before netem is attached


# -- the netem command line, written from the options without the sim plugin's code ---------

def netem_command(options: str) -> list[str]:
    """`tc qdisc ... netem` arguments for a case's `sim:` options (netem's own syntax)."""
    given = dict(item.split("=", 1) for item in options.split("&") if item)
    args = ["limit", given.get("limit", "100000")]
    if "delay" in given:
        args += ["delay", given["delay"]]
        if "jitter" in given:
            args.append(given["jitter"])
            if "distribution" in given and given["distribution"] != "uniform":
                args += ["distribution", given["distribution"]]
    if "loss" in given:
        args += ["loss", "random", given["loss"]]
    if "gemodel" in given:  # same order as netem: p, r, 1-h, 1-k
        args += ["loss", "gemodel", *given["gemodel"].split(",")]
    if "loss_state" in given:  # p13, p31, p32, p23, p14
        args += ["loss", "state", *given["loss_state"].split(",")]
    for name in ("duplicate", "corrupt", "reorder"):
        if name in given:
            args += [name, given[name]]
    if "rate" in given:
        args += ["rate", given["rate"]]
    return args


# -- the traffic -----------------------------------------------------------------------------

def payload(seq: int, sent_ns: int, size: int) -> bytes:
    head = struct.pack("!Iq", seq, sent_ns)
    return (head + struct.pack("!I", zlib.crc32(head))).ljust(size, b"\0")


def parse(data: bytes, size: int) -> tuple[int, int] | None:
    """(sequence number, send time) of an intact payload of `size` bytes, else None."""
    if len(data) != size:
        return None
    seq, sent_ns, crc = HEADER.unpack_from(data)
    if crc != zlib.crc32(data[:12]) or data[HEADER.size:].count(0) != size - HEADER.size:
        return None
    return seq, sent_ns


def paced(case: Case) -> Iterator[int]:
    """Sequence numbers at the case's spacing (back to back: a short pause every 64)."""
    start = time.monotonic()
    for seq in range(case.packets):
        if case.interval:
            pause = start + seq * case.interval - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        elif seq % 64 == 63:
            time.sleep(0.001)  # let the receiver keep up: no socket-buffer loss
        yield seq


def measure(case: Case, record: dict[str, Any]) -> dict[str, Any]:
    """The figures a case compares, from a record of either side."""
    arrivals: list[list[int]] = record["arrivals"]  # [seq, delay_us, at_us] in arrival order
    first: dict[int, int] = {}
    for seq, delay, _at in arrivals:
        first.setdefault(seq, delay)
    figures: dict[str, Any] = {"sent": case.packets, "arrived": len(arrivals),
                               "distinct": len(first),
                               "delays_ms": [delay / 1000 for delay in first.values()]}
    if case.measures == "loss":
        figures["lost"] = [0 if seq in first else 1 for seq in range(case.packets)]
    if case.measures == "corrupt":
        figures["frames"], figures["corrupted"] = record["frames"], record["corrupted"]
    if case.measures == "rate":
        times = sorted(at for _seq, _delay, at in arrivals)
        figures["span_ms"] = (times[-1] - times[0]) / 1000
        figures["per_packet_ms"] = median_gap(times) / 1000
    return figures


LOSSLESS = ("delay", "reorder", "rate", "corrupt")  # cases whose every frame arrives


def collect(case: Case, drain: Any, arrived: Callable[[], int]) -> None:
    """Send nothing; call `drain()` until QUIET seconds pass without it finding anything, or,
    in a case that loses nothing, until `arrived()` (frames in) reaches the case's count."""
    wait = QUIET + (0.3 if "delay" in case.options else 0.0)
    last = time.monotonic()
    while time.monotonic() - last < wait:
        if drain():
            last = time.monotonic()
        if case.measures in LOSSLESS and arrived() >= case.packets:
            return
        time.sleep(0.02)


# -- the guest side: tc netem on a veth ------------------------------------------------------

def carries_floor(case: Case) -> bool:
    """Whether the VM sends a timing floor of its own beside this case."""
    return case.measures == "delay" and case is not FLOOR


def qdiscs(device: str, case: Case) -> list[list[str]]:
    """The `tc qdisc` commands that put a case's netem on `device`: a delay case's under a
    two-band prio qdisc whose second band (SO_PRIORITY FLOOR_PRIORITY) holds the floor's."""
    netem = ["netem", *netem_command(case.options)]
    if not carries_floor(case):
        return [["replace", "dev", device, "root", *netem]]
    priomap = ["1" if priority == FLOOR_PRIORITY else "0" for priority in range(16)]
    return [["replace", "dev", device, "root", "handle", "1:", "prio", "bands", "2",
             "priomap", *priomap],
            ["add", "dev", device, "parent", "1:1", *netem],
            ["add", "dev", device, "parent", "1:2", "netem",
             *netem_command(FLOOR.options)]]


def netem_dropped(ns_enter: Any, device: str) -> int:
    """netem's own drop counters on `device` (`tc -s qdisc`: the netems, not their parent)."""
    shown = subprocess.run(["tc", "-s", "qdisc", "show", "dev", device], capture_output=True,
                           text=True, check=True, preexec_fn=ns_enter).stdout
    return sum(int(count) for count in re.findall(r"qdisc netem .*\n.*dropped (\d+)", shown))


def drain_timestamped(sock: socket.socket, size: int, arrivals: list[list[int]]) -> int:
    """Read what is queued: [seq, one-way delay, receive time] in us per datagram (kernel
    receive timestamps); returns how many were read."""
    count = 0
    while True:
        try:
            data, ancillary, _flags, _addr = sock.recvmsg(2048, socket.CMSG_SPACE(16))
        except BlockingIOError:
            return count
        count += 1
        parsed = parse(data, size)
        for level, kind, value in ancillary:
            if parsed and level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanoseconds = struct.unpack("qq", value[:16])
                received = seconds * 1_000_000_000 + nanoseconds
                arrivals.append([parsed[0], (received - parsed[1]) // 1000, received // 1000])


class FrameCounter:
    """AF_PACKET capture on the receiving veth: frames of the case's length, and how many
    differ from what was sent. netem flips one bit anywhere in the frame; each place is caught:
    Ethernet header (compared), IPv4 header (its checksum), UDP header (compared: the checksum
    is 0, SO_NO_CHECK), payload (CRC-32 and zero padding)."""

    def __init__(self, device: str, case: Case, ethernet: bytes) -> None:
        self.case, self.ethernet = case, ethernet
        self.udp = struct.pack("!HHHH", PORT, PORT, 8 + case.payload, 0)
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 32 * 1024 * 1024)
        self.sock.bind((device, 0))
        self.sock.setblocking(False)
        self.frames = self.corrupted = 0

    def drain(self) -> int:
        count = 0
        while True:
            try:
                frame, address = self.sock.recvfrom(4096)
            except BlockingIOError:
                return count
            if address[2] == PACKET_OUTGOING or len(frame) != self.case.frame:
                continue
            count += 1
            self.frames += 1
            self.corrupted += not self.intact(frame)

    def intact(self, frame: bytes) -> bool:
        from linkbridge.wire.packet import internet_checksum

        return (frame[:14] == self.ethernet and internet_checksum(frame[14:34]) == 0
                and frame[34:42] == self.udp
                and parse(frame[42:], self.case.payload) is not None)


def udp_pair(hosts: Any, port: int) -> tuple[socket.socket, socket.socket]:
    """(sender in A, receiver in B) for `port`: connected, timestamping, non-blocking."""
    from linkbridge.lab import netns
    from linkbridge.lab.topology import UNDERLAY

    with netns.inside(hosts.b):
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with netns.inside(hosts.a):
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 32 * 1024 * 1024)
    receiver.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    receiver.bind((UNDERLAY[1], port))
    receiver.setblocking(False)
    sender.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
    sender.bind((UNDERLAY[0], port))
    sender.connect((UNDERLAY[1], port))
    return sender, receiver


def through_netem(hosts: Any, case: Case, ethernet: bytes) -> dict[str, Any]:
    """Send the case's traffic A -> B over the veth (netem already on veth A); its record.
    A delay case's floor goes beside it (every FLOOR_EVERY-th send; "floor_arrivals")."""
    counter = None
    if case.measures == "corrupt":
        from linkbridge.lab import netns

        with netns.inside(hosts.b):
            counter = FrameCounter(hosts.veth_b, case, ethernet)
    sender, receiver = udp_pair(hosts, PORT)
    floor_sender, floor_receiver = udp_pair(hosts, FLOOR_PORT)
    floor_sender.setsockopt(socket.SOL_SOCKET, SO_PRIORITY, FLOOR_PRIORITY)
    with_floor = carries_floor(case)
    arrivals: list[list[int]] = []
    floor_arrivals: list[list[int]] = []

    def drain() -> int:
        return (drain_timestamped(receiver, case.payload, arrivals)
                + drain_timestamped(floor_receiver, FLOOR.payload, floor_arrivals)
                + (counter.drain() if counter else 0))

    with receiver, sender, floor_sender, floor_receiver, \
            (counter.sock if counter else contextlib.nullcontext()):
        floor_seq = 0
        for seq in paced(case):
            sender.send(payload(seq, time.time_ns(), case.payload))
            if with_floor and seq % FLOOR_EVERY == 0:
                floor_sender.send(payload(floor_seq, time.time_ns(), FLOOR.payload))
                floor_seq += 1
            if seq % 128 == 127:
                drain()
        collect(case, drain,
                lambda: counter.frames if counter else len(arrivals) + len(floor_arrivals)
                - floor_seq)
    record: dict[str, Any] = {"arrivals": arrivals}
    if with_floor:
        record.update(floor_arrivals=floor_arrivals, floor_sent=floor_seq)
    if counter:
        record.update(frames=counter.frames, corrupted=counter.corrupted)
    return record


def check_netem(figures: dict[str, Any]) -> None:
    """Every case through tc netem on a veth, plus the unimpaired timing floor; the records go
    to the host, where tests/vm/test_vm.py runs the same traffic through sim: and compares."""
    from pyroute2 import IPRoute

    from linkbridge.lab import netns
    from linkbridge.lab.topology import two_hosts

    with two_hosts() as hosts:
        macs = []
        for ns, device in ((hosts.b, hosts.veth_b), (hosts.a, hosts.veth_a)):
            with netns.inside(ns), IPRoute() as ipr:
                link = ipr.get_links(ipr.link_lookup(ifname=device)[0])[0]
                macs.append(bytes.fromhex(link.get_attr("IFLA_ADDRESS").replace(":", "")))
        ethernet = macs[0] + macs[1] + b"\x08\x00"
        warm_up = through_netem(hosts, WARM_UP, ethernet)
        if len(warm_up["arrivals"]) != WARM_UP.packets:
            raise RuntimeError(f"unimpaired veth lost packets: {len(warm_up['arrivals'])} of "
                               f"{WARM_UP.packets} arrived")
        for name, case in (("floor", FLOOR), *CASES.items()):
            command = netem_command(case.options)
            for qdisc in qdiscs(hosts.veth_a, case):
                tc = ["tc", "qdisc", *qdisc]
                done = subprocess.run(tc, capture_output=True, text=True, check=False,
                                      preexec_fn=lambda: netns.enter(hosts.a))
                if done.returncode:
                    raise RuntimeError(f"{' '.join(tc)}: {done.stderr.strip()}")
            started = time.monotonic()
            try:
                record = through_netem(hosts, case, ethernet)
                record["netem_dropped"] = netem_dropped(lambda: netns.enter(hosts.a),
                                                        hosts.veth_a)
            finally:
                subprocess.run(["tc", "qdisc", "del", "dev", hosts.veth_a, "root"],
                               capture_output=True, check=False,
                               preexec_fn=lambda: netns.enter(hosts.a))
            record["netem"] = command
            record["seconds"] = round(time.monotonic() - started, 1)
            figures[name] = record


# -- the host side: the same traffic through a pair of sim: links ----------------------------

def through_sim(case: Case, seed: int) -> dict[str, Any]:
    """Send the case's traffic through a real `sim:` link (A, impairing) to a second one (B,
    unimpaired) on loopback; record arrivals as the guest does, with monotonic receive times.
    Packets are as long as the frame netem sees (the rate limiter and corruption count it)."""
    from linkbridge.plugin.registry import LinkRegistry, get_plugin_manager

    registry = LinkRegistry(get_plugin_manager())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe_a, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe_b:
        probe_a.bind(("127.0.0.1", 0))
        probe_b.bind(("127.0.0.1", 0))
        port_a, port_b = probe_a.getsockname()[1], probe_b.getsockname()[1]
    options = "&".join(part for part in (case.options, "limit=100000", f"seed={seed}") if part)
    sender = registry.create_link(f"sim:127.0.0.1:{port_b}?{options}&bind=127.0.0.1:{port_a}")
    receiver = registry.create_link(f"sim:127.0.0.1:{port_a}?bind=127.0.0.1:{port_b}")
    arrivals: list[list[int]] = []
    corrupted = frames = 0
    lock = threading.Lock()
    stop = threading.Event()

    def receive() -> None:
        nonlocal corrupted, frames
        while not stop.is_set():
            for packet in receiver.receive(0.05):
                now = time.monotonic_ns()
                parsed = parse(packet, case.frame)
                with lock:
                    frames += 1
                    if parsed is None:
                        corrupted += 1
                    else:
                        arrivals.append([parsed[0], (now - parsed[1]) // 1000, now // 1000])

    receiver.open()
    sender.open()
    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    try:
        for seq in paced(case):
            sender.send(payload(seq, time.monotonic_ns(), case.frame))
        seen = [0]

        def drain() -> int:
            with lock:
                count, seen[0] = frames - seen[0], frames
            return count

        collect(case, drain, lambda: frames)
    finally:
        stop.set()
        thread.join()
        sender.close()
        receiver.close()
    return {"arrivals": arrivals, "frames": frames, "corrupted": corrupted,
            "sim_loss": sender.counters.drops.get("sim_loss", 0),
            "sim_queue_full": sender.counters.drops.get("sim_queue_full", 0)}
