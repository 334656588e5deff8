"""What the encrypt layer costs, side by side with the plain tunnel in one run.

1. Bytes and CPU per packet (no root): the frame a packet becomes, plain and encrypted, and the
   time SecureChannel.seal_many() and open_many() take per packet with each cipher, at a
   64-byte radio frame's packet, a 576-byte one and a full 1452-byte one. Target: at most 24
   bytes of overhead (WireGuard: 32).
2. TCP over `udp:` between two lab hosts (root), the tunnels interleaved round by round: Mbit/s
   and the CPU both linkbridge processes spent per GB; before each transfer, pings (light
   traffic, the lean loop): median RTT and the CPU both processes spent per ping. Targets:
   encrypted (the default `--cipher auto`) at least 0.75 x plain TCP (medians), both in the
   batched/GSO data path, TUN offloads off. Reported without a target: each cipher forced
   (`--cipher`), so that auto's measured choice can be judged, and both tunnels again with TUN
   offloads on (encrypted super-packets).
3. Ping RTT (root): a plain and an encrypted tunnel up at once, each in a lab of its own,
   pinged in turns of 20 in a new random order each turn (as `compare` does), so that load
   from elsewhere falls on both alike. Target: encrypted median RTT at most 1.25 x plain.
4. The handshake over `sim:?rate=9600&mtu=64` (root): a 9600 bit/s link with 64-byte frames,
   so fragmentation carries it; the time from a side's initiation to the answer it needs.
   Target: at most 1 s.

`python -m benchmarks encryption --quick` runs part 1 only.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import os
import random
import re
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from benchmarks.compare import PING_ROUND, Running, interleaved_pings
from benchmarks.running import run_measurements, verdict_status
from linkbridge.errors import LinkbridgeError
from linkbridge.lab.probes import ping, tcp_transfer
from linkbridge.lab.processes import LinkbridgeProcess
from linkbridge.lab.run import SideArgs, lab_tunnels
from linkbridge.lab.topology import OVERLAY, two_hosts
from linkbridge.ops.keys import new_private_key, public_key_of
from linkbridge.ops.status import collect_status
from linkbridge.plugin.registry import LinkRegistry, get_plugin_manager
from linkbridge.wire.noise import public_bytes
from linkbridge.wire.secure import (
    AES_256_GCM,
    CHACHA20_POLY1305,
    CIPHERS,
    INITIATION_SIZE,
    OVERHEAD,
    RESPONSE_SIZE,
    SecureChannel,
    StaticKeys,
    Timers,
)

MAX_OVERHEAD = 24  # bytes
MIN_TCP_RATIO = 0.75
MAX_RTT_RATIO = 1.25  # encrypted / plain median ping RTT
MAX_HANDSHAKE_S = 1.0
SIZES = (64 - OVERHEAD, 576, 1452)  # a packet that fills a 64-byte frame, a small, a full one
BATCH = 64  # packets per seal_many()/open_many() call in part 1
PINGS = 200  # per round, before the transfer
_ENCRYPTION = re.compile(r"counters encrypt\+\S+: (\{.*\})$", re.MULTILINE)


def channel_pair(cipher: str) -> tuple[SecureChannel, SecureChannel]:
    """Two channels with a session between them, in memory, using `cipher`."""
    keys = [X25519PrivateKey.generate() for _ in range(2)]
    sides = [SecureChannel(StaticKeys(keys[i], public_bytes(keys[1 - i]),
                                      ciphers=frozenset({cipher})), Timers(),
                           lambda reason: None, os.urandom, time.time_ns) for i in range(2)]
    sides[0].start(0.0)
    initiation = sides[0].work(0.0)
    sides[1].open(initiation[0], 0.0)
    response = sides[1].work(0.0)
    sides[0].open(response[0], 0.0)
    keepalive = sides[0].work(0.0)
    sides[1].open(keepalive[0], 0.0)
    return sides[0], sides[1]


def per_packet(count: int) -> list[str]:
    """Part 1: bytes and microseconds per packet, each cipher."""
    lines = [f"per packet: plain frame vs encrypted frame, seal/open time (in process, in "
             f"batches of {BATCH} as the data path calls them)",
             f"  {'cipher':<17}  {'packet':>6}  {'plain':>6}  {'encrypted':>9}  "
             f"{'overhead':>8}  {'seal':>8}  {'open':>8}  {'seal+open':>10}"]
    for cipher in CIPHERS:
        lines += cipher_rows(cipher, count)
    verdict = "ok" if OVERHEAD <= MAX_OVERHEAD else "MISSED"
    lines.append(f"  overhead {OVERHEAD} bytes per packet (1 type and key id, 3 counter, "
                 f"16 tag; WireGuard 32) (target <= {MAX_OVERHEAD}: {verdict})")
    return lines


def cipher_rows(cipher: str, count: int) -> list[str]:
    """Part 1's rows of one cipher."""
    sender, receiver = channel_pair(cipher)
    lines = []
    for size in SIZES:
        batch = [random.randbytes(size)] * BATCH
        frames, opened = [], []
        start = time.perf_counter()
        for _ in range(count // BATCH):
            frames += sender.seal_many(batch, 1.0)
        sealed = time.perf_counter()
        for at in range(0, len(frames), BATCH):
            opened += receiver.open_many(frames[at:at + BATCH], 1.0)[0]
        done = time.perf_counter()
        count = len(frames)
        if opened != batch * (count // BATCH):
            raise LinkbridgeError("sealed packets did not open to themselves")
        seal_us, open_us = (sealed - start) / count * 1e6, (done - sealed) / count * 1e6
        lines.append(f"  {cipher:<17}  {size:>6}  {size:>6}  {len(frames[0]):>9}  "
                     f"{len(frames[0]) - size:>3} B {100 * (len(frames[0]) - size) / size:3.0f}%"
                     f"  {seal_us:>5.2f} us  {open_us:>5.2f} us  "
                     f"{size * 8 / (seal_us + open_us):>6.0f} Mbit/s")
    return lines


class Keys:
    """Key files of the two lab sides, in a private directory."""

    def __init__(self, directory: str) -> None:
        self.files, self.public = [], []
        for name in ("a", "b"):
            path = Path(directory, f"{name}.key")
            private = new_private_key()
            path.write_text(private + "\n")
            path.chmod(0o600)
            self.files.append(str(path))
            self.public.append(public_key_of(private))

    def args(self, side: int) -> list[str]:
        return ["--private-key", self.files[side], "--peer-public-key", self.public[1 - side]]

    def side_args(self) -> SideArgs:
        """Side A's options and side B's, each its own key and the other's public key."""
        return self.args(0), self.args(1)


def cpu_seconds(process: LinkbridgeProcess) -> float:
    """CPU time of a running process so far, all its threads (the scheduler's nanoseconds:
    finer than the 10 ms ticks of /proc/PID/stat, enough for a few hundred pings)."""
    assert process.proc is not None
    tasks = Path(f"/proc/{process.proc.pid}/task").iterdir()
    return sum(int((task / "schedstat").read_text().split()[0]) for task in tasks) / 1e9


@dataclass(frozen=True)
class Variant:
    """One kind of tunnel in part 2: encrypted or not, and its extra options."""

    name: str
    encrypted: bool
    extra: tuple[str, ...] = ()


def variants() -> list[Variant]:
    """Part 2's tunnels: plain and encrypted (the targets), each cipher forced, and both
    again with TUN offloads."""
    offload = ("--offload", "on")
    return [Variant("plain", False), Variant("encrypted", True),
            Variant("aes-gcm", True, ("--cipher", AES_256_GCM)),
            Variant("chacha20", True, ("--cipher", CHACHA20_POLY1305)),
            Variant("plain+offload", False, offload), Variant("encrypted+offload", True, offload)]


def encryption_status(process: LinkbridgeProcess) -> dict[str, object]:
    """The encrypt layer's status in the counters a tunnel logged when it stopped."""
    found = _ENCRYPTION.findall(process.output())
    if not found:
        raise LinkbridgeError(f"a tunnel logged no encrypt counters: {process.output()}")
    status = ast.literal_eval(found[-1])["encryption"]
    assert isinstance(status, dict)
    return status


class Round(NamedTuple):
    """One variant's figures in one round."""

    mbit_per_s: float
    cpu_s_per_gb: float
    cipher: str  # "-" for a plain tunnel
    rtt_ms: float  # median ping round trip, light traffic
    ping_cpu_us: float  # CPU both processes spent per ping (its request and its reply)


def tcp_round(registry: LinkRegistry, keys: Keys, variant: Variant, size: int) -> Round:
    """The figures of one TCP transfer (and pings before it) through a fresh lab."""
    with two_hosts() as hosts, lab_tunnels(
            hosts, "udp", extra_args=variant.extra, registry=registry,
            side_args=keys.side_args() if variant.encrypted else ((), ())) as sides:
        if not ping(hosts.a, OVERLAY[1], count=3, interval=0.01).received:
            raise LinkbridgeError("the tunnels carry no ping")
        before = sum(map(cpu_seconds, sides))
        pings = ping(hosts.a, OVERLAY[1], count=PINGS, interval=0.005)
        if not pings.rtts_ms:
            raise LinkbridgeError("no ping came back")
        ping_cpu = sum(map(cpu_seconds, sides)) - before
        before = sum(map(cpu_seconds, sides))
        result = tcp_transfer(hosts.b, OVERLAY[1], hosts.a, size)
        cpu = sum(map(cpu_seconds, sides)) - before
    if not result.intact:
        raise LinkbridgeError("the TCP transfer arrived corrupted")
    cipher = str(encryption_status(sides[0])["cipher"]) if variant.encrypted else "-"
    return Round(result.mbit_per_s, cpu / (result.received_bytes / 1e9), cipher,
                 statistics.median(pings.rtts_ms), ping_cpu / PINGS * 1e6)


def median_round(values: list[Round]) -> Round:
    """The medians of a variant's rounds (the ciphers they took, joined)."""
    return Round(statistics.median(v.mbit_per_s for v in values),
                 statistics.median(v.cpu_s_per_gb for v in values),
                 ",".join(sorted({v.cipher for v in values})),
                 statistics.median(v.rtt_ms for v in values),
                 statistics.median(v.ping_cpu_us for v in values))


def tcp_side_by_side(rounds: int, size: int) -> list[str]:
    """Part 2: the variants' TCP figures, interleaved round by round."""
    registry = LinkRegistry(get_plugin_manager())
    kinds = variants()
    figures: dict[str, list[Round]] = {kind.name: [] for kind in kinds}
    with tempfile.TemporaryDirectory(prefix="lb-keys-") as directory:
        keys = Keys(directory)
        for _ in range(rounds):
            for kind in kinds:
                figures[kind.name].append(tcp_round(registry, keys, kind, size))
    lines = [f"TCP over udp: ({rounds} rounds of {size / 1e6:.0f} MB, interleaved; medians; "
             f"RTT: median of {PINGS} pings before the transfer, CPU us per ping: both "
             "processes)",
             f"  {'tunnel':<18} {'cipher':<17} {'Mbit/s':>8} {'CPU s/GB':>9} {'RTT ms':>7} "
             f"{'us/ping':>8}  (rounds: Mbit/s)"]
    medians: dict[str, Round] = {}
    for name, values in figures.items():
        medians[name] = median = median_round(values)
        lines.append(f"  {name:<18} {median.cipher:<17} {median.mbit_per_s:>8.0f} "
                     f"{median.cpu_s_per_gb:>9.2f} {median.rtt_ms:>7.3f} "
                     f"{median.ping_cpu_us:>8.0f}  "
                     f"({', '.join(f'{v.mbit_per_s:.0f}' for v in values)})")
    plain, encrypted = medians["plain"], medians["encrypted"]
    ratio = encrypted.mbit_per_s / plain.mbit_per_s
    verdict = "ok" if ratio >= MIN_TCP_RATIO else "MISSED"
    lines.append(f"  encrypted / plain {ratio:.3f}x (target >= {MIN_TCP_RATIO:g}x: {verdict})")
    for name, base in (("aes-gcm", "plain"), ("chacha20", "plain"),
                       ("encrypted+offload", "plain+offload")):
        ratio = medians[name].mbit_per_s / medians[base].mbit_per_s
        lines.append(f"  {name} / {base} {ratio:.3f}x (reported)")
    ratio = encrypted.ping_cpu_us / plain.ping_cpu_us
    lines.append(f"  encrypted CPU per ping / plain {ratio:.3f}x (reported)")
    return lines


def rtt_side_by_side(count: int) -> list[str]:
    """Part 3: the plain and the encrypted tunnel up at once, pinged in turns."""
    registry = LinkRegistry(get_plugin_manager())
    with tempfile.TemporaryDirectory(prefix="lb-keys-") as directory, \
            contextlib.ExitStack() as stack:
        keys = Keys(directory)
        hosts = {name: stack.enter_context(two_hosts()) for name in ("plain", "encrypted")}
        stack.enter_context(lab_tunnels(hosts["plain"], "udp", registry=registry))
        stack.enter_context(lab_tunnels(hosts["encrypted"], "udp", registry=registry,
                                        side_args=keys.side_args()))
        running = {name: Running(OVERLAY[1]) for name in hosts}
        for name in hosts:
            if not ping(hosts[name].a, OVERLAY[1], count=3, interval=0.01).received:
                raise LinkbridgeError(f"the {name} tunnels carry no ping")
        rtts = interleaved_pings(hosts, running, count, random.Random(0))
    plain, encrypted = (statistics.median(rtts[name]) for name in ("plain", "encrypted"))
    ratio = encrypted / plain
    verdict = "ok" if ratio <= MAX_RTT_RATIO else "MISSED"
    return [f"ping RTT, plain and encrypted up at once ({count} pings each, in turns of "
            f"{PING_ROUND} in random order; medians)",
            f"  plain {plain:.3f} ms, encrypted {encrypted:.3f} ms: encrypted / plain "
            f"{ratio:.3f}x (target <= {MAX_RTT_RATIO:g}x: {verdict})"]


def handshake_time(registry: LinkRegistry, keys: Keys) -> float:
    """Seconds B's handshake took over a 9600 bit/s sim: link with 64-byte frames. B starts
    once A is ready, so that its first initiation finds A listening (started together, an
    initiation sent before the peer's link is open is lost, and the round then takes the 5 s
    retry: a race of the plumbing, not the handshake)."""
    link = "sim:?rate=9600&mtu=64"
    with two_hosts() as hosts, lab_tunnels(hosts, link, mtu=576, registry=registry,
                                           side_args=keys.side_args(),
                                           staggered=True) as (_a, b):
        deadline = time.monotonic() + 20
        while (took := live_handshake_s(b)) is None and time.monotonic() < deadline:
            time.sleep(0.1)
    if took is None:
        raise LinkbridgeError(f"no handshake completed over {link}: {b.output()}")
    return took


def live_handshake_s(process: LinkbridgeProcess) -> float | None:
    """How long the running tunnel's own latest handshake took (its status socket), None
    before it has a session of its own: the log line alone may come a frame before it."""
    assert process.proc is not None
    for tunnel in collect_status():
        if tunnel.pid == process.proc.pid:
            for side in tunnel.link_side.stack():
                if side.encryption is not None:
                    return side.encryption.handshake_s
    return None


def radio_handshake(rounds: int) -> list[str]:
    """Part 3: the handshake at 9600 bit/s."""
    registry = LinkRegistry(get_plugin_manager())
    with tempfile.TemporaryDirectory(prefix="lb-keys-") as directory:
        keys = Keys(directory)
        times = [handshake_time(registry, keys) for _ in range(rounds)]
    worst = max(times)
    verdict = "ok" if worst <= MAX_HANDSHAKE_S else "MISSED"
    return [f"handshake over sim:?rate=9600&mtu=64 ({INITIATION_SIZE} + {RESPONSE_SIZE} bytes, "
            "fragmented)",
            f"  {', '.join(f'{t:.3f}' for t in times)} s; worst {worst:.3f} s "
            f"(target <= {MAX_HANDSHAKE_S:g} s: {verdict})"]


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks encryption", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="only the per-packet figures (no root, no lab)")
    parser.add_argument("--count", type=int, default=20_000,
                        help="packets per size in part 1 (default 20000)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="TCP rounds per variant and handshakes (default 3)")
    parser.add_argument("--pings", type=int, default=1000,
                        help="pings per tunnel in part 3 (default 1000)")
    parser.add_argument("--bytes", type=int, default=200_000_000, dest="size",
                        help="bytes per TCP transfer (default 200000000)")
    args = parser.parse_args(argv)
    if args.count < 1 or args.rounds < 1 or args.size < 1 or args.pings < 1:
        parser.error("--count, --rounds, --pings and --bytes must be positive")
    lines = per_packet(args.count)
    print("\n".join(lines), flush=True)
    if args.quick:
        return verdict_status(lines)
    status, measured = run_measurements(
        lambda: (tcp_side_by_side(args.rounds, args.size) + rtt_side_by_side(args.pings)
                 + radio_handshake(args.rounds)),
        "network namespaces, TUN")
    if measured is None:
        return status
    print("\n".join(measured), flush=True)
    return verdict_status(lines + measured)
