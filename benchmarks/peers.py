"""A multipoint hub with 100 peers against one with 1 peer, side by side (docs/multipoint.md,
"The scale figure"): the 64-byte packet rate each forwards, both ways, its memory and threads.

Three namespaces on one switch: hub1 (a tunnel with one peer), hub100 (one with 100 peers) and
the peers' host, where one UDP socket per peer speaks the hub's wire protocol (plain: a frame
is the IP packet). Both hubs run all along; each repetition measures them one after the other,
in a new random order, so that load from elsewhere falls on both alike:

- `in`: the benchmark's sender sends 64-byte IPv4 packets from every peer's socket in turn
  (each from an address of that peer's prefix, to the hub's own address, where a socket takes
  them) as fast as it can; the figure is what the hub wrote into its TUN device per second
  (each frame took a station lookup and the source check);
- `out`: a sender in the hub's namespace sends 64-byte packets to an address of each peer in
  turn; the figure is what the hub sent to the peers' stations per second (a route lookup).

Each figure also per second of the hub's CPU time (its packets over its user and system time
in the window): the cost per packet, which load from elsewhere on the machine disturbs less
than the rate.

The ratio 100 peers / 1 peer of the median rates must be >= 0.9 (lookups do not grow with
the peer count), the 100-peer hub's RSS <= 100 MB; the router's own cost per packet of CPU
time, in-process, with 1 and 100 peers. Then both hubs start again with every peer encrypted
and real (benchmarks/peer_sessions.py): every session up and every peer's ping to the hub and
to the next peer answered within 30 s, and the hubs' thread counts (equal when every peer's
handshakes share one thread). Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import random
import socket
import statistics
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from benchmarks.peer_sessions import encrypted_peers, ping_around
from benchmarks.running import run_measurements, verdict_status
from linkbridge.datapath.counters import Counters
from linkbridge.datapath.multipoint import PeerRouter
from linkbridge.lab import netns
from linkbridge.lab.processes import LinkbridgeProcess, running_together
from linkbridge.lab.topology import Star, set_sysctl, star_hosts
from linkbridge.ops.keys import new_private_key, public_key_of
from linkbridge.ops.status import collect_status
from linkbridge.ops.status_data import TunnelStatus
from linkbridge.wire.keys import decode_key, encode_key
from linkbridge.wire.packet import internet_checksum
from linkbridge.wire.peers import PeerTable, parse_peer

HUB_PORT = 47500
FIRST_PEER_PORT = 50000
HUB_ADDRESS = "198.19.0.1"
SINK_PORT = 9
PACKET = 64  # bytes of each IP packet
TARGET_RATIO = 0.9
TARGET_RSS_MB = 100.0
SESSIONS_TIMEOUT = 30.0  # seconds for every encrypted session to come up, pings answered
DEVICE = "lbh0"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PEER_BUFFER = 4096  # bytes of receive buffer of each peer's socket
BATCH = 64  # frames per receive of the in-process router figure
ROUTER_ROUNDS = 9  # of the router figure (with 5, a run gave 0.86 `in`; two runs with 9 0.96-0.99)


@dataclass(frozen=True)
class Settings:
    peers: int
    reps: int
    seconds: float


@dataclass
class Hub:
    """One hub: its namespace, underlay address, peers' ports, and its process."""

    host: str
    address: str
    peers: int
    first_port: int
    process: LinkbridgeProcess | None = None
    # by direction: (packets per second, packets per second of the hub's CPU time)
    rates: dict[str, list[tuple[float, float]]] = field(
        default_factory=lambda: {"in": [], "out": []})

    def args(self, peers_address: str, hub_key: Path | None = None,
             publics: Sequence[str] = ()) -> list[str]:
        """`linkbridge up` of the hub, its peers' stations on `peers_address`; with its
        private key file `hub_key`, each peer's key= from `publics` (a new key each when
        none are given)."""
        args = ["up", "--name", DEVICE, "--link", f"udp:?bind={self.address}:{HUB_PORT}",
                "--address", f"{HUB_ADDRESS}/16"]
        if hub_key is not None:
            args += ["--private-key", str(hub_key)]
            publics = publics or [public_key_of(new_private_key()) for _ in range(self.peers)]
        for index in range(self.peers):
            key = f",key={publics[index]}" if hub_key is not None else ""
            args += ["--peer", f"p{index},allowed={peer_prefix(index)}.0/24,"
                               f"endpoint={peers_address}:{self.first_port + index}{key}"]
        return args

    def status(self) -> TunnelStatus:
        assert self.process is not None and self.process.proc is not None
        pid = self.process.proc.pid
        return next(tunnel for tunnel in collect_status() if tunnel.pid == pid)

    def cpu_seconds(self) -> float:
        """The CPU time the hub's process used so far (user and system, all threads)."""
        assert self.process is not None and self.process.proc is not None
        fields = Path(f"/proc/{self.process.proc.pid}/stat").read_text().rsplit(")", 1)[1]
        utime, stime = fields.split()[11:13]
        return (int(utime) + int(stime)) / CLK_TCK

    def proc_status(self, key: str) -> int:
        """A number of /proc/PID/status (VmRSS in kB, Threads)."""
        assert self.process is not None and self.process.proc is not None
        text = Path(f"/proc/{self.process.proc.pid}/status").read_text()
        line = next(line for line in text.splitlines() if line.startswith(key + ":"))
        return int(line.split()[1])


def peer_prefix(index: int) -> str:
    """The first three octets of peer `index`'s /24."""
    return f"198.19.{index + 1}"


def udp_packet(source: str, destination: str, payload: bytes) -> bytes:
    """An IPv4 UDP packet to SINK_PORT with its header checksum (the kernel checks it)."""
    udp = struct.pack("!HHHH", SINK_PORT, SINK_PORT, 8 + len(payload), 0) + payload
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64,
                         socket.IPPROTO_UDP, 0, socket.inet_aton(source),
                         socket.inet_aton(destination))
    return header[:10] + internet_checksum(header).to_bytes(2, "big") + header[12:] + udp


def udp_socket(host: str, bind: tuple[str, int] | None = None) -> socket.socket:
    with netns.inside(host):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if bind is not None:
        sock.bind(bind)
    return sock


Send = tuple[Callable[[bytes], int], bytes]  # a connected socket's send() and its packet
ROUND = 100  # sends between two looks at the stop flag


def blast(sends: Sequence[Send], stop: threading.Event) -> None:
    """Send each packet in turn, as fast as the sockets take them, until `stop` (a round has
    ROUND sends whatever the number of peers, so the sender's cost per packet is the same)."""
    rounds = list(sends) * max(1, ROUND // len(sends))
    while not stop.is_set():
        try:
            for send, packet in rounds:
                send(packet)
        except OSError:  # a full queue (ENOBUFS) or a refused port: on with the next round
            continue


def rate(hub: Hub, counter: Callable[[TunnelStatus], int], send: Sequence[Send],
         seconds: float) -> tuple[float, float]:
    """The hub's packets by `counter` per second and per second of its CPU time while `send`
    runs, after a settling half second."""
    stop = threading.Event()
    sender = threading.Thread(target=blast, args=(send, stop), daemon=True)
    sender.start()
    try:
        time.sleep(0.5)
        first, start, cpu = counter(hub.status()), time.perf_counter(), hub.cpu_seconds()
        time.sleep(seconds)
        last, end = counter(hub.status()), time.perf_counter()
        used = hub.cpu_seconds() - cpu
    finally:
        stop.set()
        sender.join()
    return (last - first) / (end - start), (last - first) / max(used, 1 / CLK_TCK)


def measure(hub: Hub, peer_sockets: Sequence[socket.socket], seconds: float) -> None:
    """One `in` and one `out` figure of `hub`."""
    send_in = [(sock.send, udp_packet(f"{peer_prefix(index)}.5", HUB_ADDRESS,
                                      bytes(PACKET - 28)))
               for index, sock in enumerate(peer_sockets)]
    hub.rates["in"].append(rate(hub, lambda s: s.tunnel.tx_packets, send_in, seconds))
    with contextlib.ExitStack() as stack:
        payload = bytes(PACKET - 28)
        send_out = []
        for index in range(hub.peers):
            out = stack.enter_context(udp_socket(hub.host))
            out.connect((f"{peer_prefix(index)}.5", SINK_PORT))
            send_out.append((out.send, payload))
        hub.rates["out"].append(rate(hub, lambda s: s.link_side.tx_packets, send_out, seconds))


@contextlib.contextmanager
def peer_sockets(host: str, address: str, hub: Hub) -> Iterator[list[socket.socket]]:
    """The hub's peers' sockets on the peers' `host` (at `address`), connected to the hub
    (never read by the benchmark: the kernel drops what overflows them)."""
    with contextlib.ExitStack() as stack:
        socks = []
        for index in range(hub.peers):
            sock = stack.enter_context(udp_socket(host, (address, hub.first_port + index)))
            # a small buffer: 100 full ones would put the kernel's UDP memory under pressure
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, PEER_BUFFER)
            sock.connect((hub.address, HUB_PORT))
            socks.append(sock)
        yield socks


def run(settings: Settings) -> tuple[list[Hub], dict[str, int], dict[str, str]]:
    with star_hosts(3) as star:
        hubs = [Hub(star.hosts[0], star.address(0), 1, FIRST_PEER_PORT - 1000),
                Hub(star.hosts[1], star.address(1), settings.peers, FIRST_PEER_PORT)]
        for hub in hubs:
            hub.process = LinkbridgeProcess(hub.host, hub.args(star.address(2)),
                                            f"hub{hub.peers}")
        with contextlib.ExitStack() as stack:
            sockets = [stack.enter_context(peer_sockets(star.hosts[2], star.address(2), hub))
                       for hub in hubs]
            stack.enter_context(running_together(*(hub.process for hub in hubs
                                                   if hub.process)))
            for hub in hubs:  # the hub's own address takes what the peers send, unread
                stack.enter_context(udp_socket(hub.host, (HUB_ADDRESS, SINK_PORT)))
            for _rep in range(settings.reps):
                order = list(zip(hubs, sockets, strict=True))
                random.shuffle(order)
                for hub, socks in order:
                    measure(hub, socks, settings.seconds)
            memory = {"rss_kb": hubs[1].proc_status("VmRSS"),
                      "plain, 1 peer": hubs[0].proc_status("Threads"),
                      f"plain, {settings.peers} peers": hubs[1].proc_status("Threads")}
        encrypted = encrypted_run(star, hubs)
    return hubs, memory, encrypted


def established(hub: Hub) -> int:
    """How many of the hub's peers have an established session."""
    return sum(layer.encryption.state == "established"
               for _name, side in hub.status().peers
               for layer in side.stack() if layer.encryption)


def encrypted_run(star: Star, hubs: Sequence[Hub]) -> dict[str, str]:
    """Both hubs again, every peer encrypted and real (benchmarks/peer_sessions.py): the
    seconds until all sessions are established, the pings answered, the hub's threads."""
    figures = {}
    with TemporaryDirectory() as directory:
        hub_key = Path(directory) / "hub.key"
        hub_private = new_private_key()
        hub_key.write_text(hub_private + "\n")
        hub_key.chmod(0o600)
        hub_public = decode_key(public_key_of(hub_private), "hub")
        for hub in hubs:
            set_sysctl(hub.host, "net/ipv4/ip_forward", "1")  # peer to peer through the hub
            privates = [X25519PrivateKey.generate() for _ in range(hub.peers)]
            publics = [encode_key(private.public_key().public_bytes_raw())
                       for private in privates]
            hub.process = LinkbridgeProcess(hub.host, hub.args(star.address(2), hub_key,
                                                               publics),
                                            f"encrypted hub{hub.peers}")
            with hub.process, encrypted_peers(star.hosts[2], star.address(2), hub.first_port,
                                              (hub.address, HUB_PORT), hub_public,
                                              privates) as layers:
                pings = ping_around(layers, [f"{peer_prefix(index)}.5"
                                             for index in range(hub.peers)], HUB_ADDRESS,
                                    functools.partial(established, hub), SESSIONS_TIMEOUT)
                met = 0 <= pings.sessions_s <= SESSIONS_TIMEOUT and \
                    pings.hub_answered == pings.peer_answered == hub.peers
                figures[f"encrypted, {hub.peers} peer{'s' * (hub.peers > 1)}"] = (
                    f"sessions up in {pings.sessions_s:.1f} s, pings answered: "
                    f"{pings.hub_answered}/{hub.peers} to the hub, {pings.peer_answered}/"
                    f"{hub.peers} to the next peer, {hub.proc_status('Threads')} threads; "
                    f"all within {SESSIONS_TIMEOUT:g} s {'met' if met else 'MISSED'}")
    return figures


class Stations:
    """An in-memory addressed link under the in-process router figure: it returns the same
    batch of frames on every receive and sends nowhere."""

    name = "stations"

    def __init__(self, frames: list[tuple[str, bytes]]) -> None:
        self.frames = frames
        self.counters = Counters()

    def set_stations(self, stations: Sequence[str]) -> None:
        """Any station will do."""

    def send_to(self, station: str, frame: bytes) -> None:
        """Nowhere."""

    def send_all(self, frame: bytes) -> None:
        """Nowhere."""

    def send(self, frame: bytes) -> None:
        """Nowhere."""

    def receive(self, timeout: float) -> list[bytes]:
        return [frame for _station, frame in self.frames]

    def receive_from(self, timeout: float) -> list[tuple[str, bytes]]:
        return self.frames

    def close(self) -> None:
        """Nothing to close."""


def router_rates(peers: int, seconds: float) -> dict[str, float]:
    """The PeerRouter's own packets per second of CPU time with `peers` peers (no sockets:
    its station lookup and source check on receive, its route lookup on send), each packet
    from or to the next peer in turn."""
    table = PeerTable(parse_peer(f"p{index},allowed={peer_prefix(index)}.0/24,"
                                 f"endpoint=192.0.2.1:{FIRST_PEER_PORT + index}")
                      for index in range(peers))
    frames = [(f"192.0.2.1:{FIRST_PEER_PORT + k % peers}",
               udp_packet(f"{peer_prefix(k % peers)}.5", HUB_ADDRESS, bytes(PACKET - 28)))
              for k in range(BATCH)]
    router = PeerRouter(Stations(frames), table)
    packets = [udp_packet(HUB_ADDRESS, f"{peer_prefix(k % peers)}.5", bytes(PACKET - 28))
               for k in range(BATCH)]
    def send_batch() -> None:
        for packet in packets:
            router.send(packet)

    rates = {}
    for name, step in (("in", lambda: router.receive(0)), ("out", send_batch)):
        count, start = 0, time.thread_time()  # CPU time: other load does not count
        while time.thread_time() - start < seconds:
            for _ in range(100):
                step()
            count += 100 * BATCH
        rates[name] = count / (time.thread_time() - start)
    return rates


def router_rows(peers: int, reps: int = ROUTER_ROUNDS) -> list[str]:
    """The in-process router figure: `reps` rounds, each running the 1-peer and the `peers`
    router for 0.2 s back to back in a random order; per direction the median of each side's
    rates and, checked, the median of the rounds' ratios (a host whose speed drifts between
    rounds moves both halves of a round alike; the best of each side apart did not)."""
    rates: dict[int, dict[str, list[float]]] = {1: {"in": [], "out": []},
                                                peers: {"in": [], "out": []}}
    ratios: dict[str, list[float]] = {"in": [], "out": []}
    for _rep in range(reps):
        measured = {count: router_rates(count, 0.2) for count in random.sample([1, peers], 2)}
        for name, paired in ratios.items():
            paired.append(measured[peers][name] / measured[1][name])
            for count, rate in measured.items():
                rates[count][name].append(rate[name])
    rows = []
    for name, paired in ratios.items():
        ratio = statistics.median(paired)
        verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
        rows.append(f"{'router ' + name + ' (pkt/s)':<24}"
                    f"{statistics.median(rates[1][name]):>26.0f}"
                    f"{statistics.median(rates[peers][name]):>26.0f}{ratio:>8.2f}  "
                    f">= {TARGET_RATIO} {verdict}")
    return rows


def table(hubs: Sequence[Hub], memory: dict[str, int]) -> list[str]:
    """The figures, medians with [min..max], the ratios and their verdicts."""
    many = hubs[1]
    rows = [f"{'figure':<24}{'1 peer':>26}{f'{many.peers} peers':>26}{'ratio':>8}  target"]
    for direction in ("in", "out"):
        for column, unit in ((0, "pkt/s"), (1, "pkt/CPU s")):
            figures = [[sample[column] for sample in hub.rates[direction]] for hub in hubs]
            cells = [f"{statistics.median(values):.0f} [{min(values):.0f}..{max(values):.0f}]"
                     for values in figures]
            ratio = statistics.median(figures[1]) / statistics.median(figures[0])
            verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
            rows.append(f"{direction + ' (' + unit + ')':<24}{cells[0]:>26}{cells[1]:>26}"
                        f"{ratio:>8.2f}  >= {TARGET_RATIO} {verdict}")
    rss = memory.pop("rss_kb") / 1024
    rows.append(f"RSS of the {many.peers}-peer hub: {rss:.1f} MB  <= {TARGET_RSS_MB:g} MB "
                f"{'met' if rss <= TARGET_RSS_MB else 'MISSED'}")
    rows.append("threads of each hub: " + "; ".join(f"{key}: {value}"
                                                    for key, value in memory.items()))
    return rows


def parse_args(argv: Sequence[str]) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m benchmarks peers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", type=int, default=100, help="peers of the large hub (100)")
    parser.add_argument("--reps", type=int, default=5, help="repetitions (5)")
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="seconds each figure is measured (2)")
    args = parser.parse_args(argv)
    if not 2 <= args.peers <= 250 or args.reps < 1 or args.seconds <= 0:
        parser.error("--peers takes 2..250, --reps and --seconds positive numbers")
    return Settings(args.peers, args.reps, args.seconds)


def main(argv: Sequence[str]) -> int:
    settings = parse_args(argv)
    status, result = run_measurements(lambda: run(settings), "network namespaces, TUN")
    if result is None:
        return status
    hubs, memory, encrypted = result
    print(f"multipoint hub: 1 vs {settings.peers} peers, {settings.reps} reps x "
          f"{settings.seconds:g} s, {PACKET}-byte packets; cells: median [min..max]")
    rows = table(hubs, memory) + router_rows(settings.peers) + [
        f"{name}: {text}" for name, text in encrypted.items()]
    print("\n".join(rows), flush=True)
    return verdict_status(rows)
