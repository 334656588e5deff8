"""Encrypted tunnels between two namespaces over udp: (docs/security.md): traffic, frames
injected by a third namespace with the peer's address, a wrong key, a side killed and
restarted."""

from __future__ import annotations

import ast
import contextlib
import json
import random
import re
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from linkbridge.lab import netns
from linkbridge.lab.probes import ping, tcp_transfer
from linkbridge.lab.processes import LinkbridgeProcess
from linkbridge.lab.run import TUN_NAME, tunnel_args
from linkbridge.lab.topology import OVERLAY, UNDERLAY, TwoHosts, link_stats
from linkbridge.ops.keys import new_private_key, public_key_of
from linkbridge.plugin.lab import LabPairing
from linkbridge.plugin.registry import LinkRegistry
from linkbridge.plugin.url import LinkUrl, parse_link_url
from linkbridge.wire.secure import AES_256_GCM, CHACHA20_POLY1305
from tests.helpers.commands import status, status_json
from tests.helpers.namespace_state import snmp_counters, udp_queued
from tests.helpers.waiting import settled

_COUNTERS = re.compile(r"counters (queue\+)?encrypt\+\S+: (\{.*\})$", re.MULTILINE)


@dataclass(frozen=True)
class Keys:
    """A key file and the public key of each side, and a third key nobody uses."""

    files: tuple[str, str]
    public: tuple[str, str]
    stranger: str

    def args(self, side: int, peer: str | None = None) -> list[str]:
        return ["--private-key", self.files[side],
                "--peer-public-key", peer or self.public[1 - side]]


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    files, public = [], []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.key"
        private = new_private_key()
        path.write_text(private + "\n")
        path.chmod(0o600)
        files.append(str(path))
        public.append(public_key_of(private))
    return Keys((files[0], files[1]), (public[0], public[1]),
                public_key_of(new_private_key()))


@contextlib.contextmanager
def lab_urls(lab: TwoHosts, registry: LinkRegistry, link: str = "udp"
             ) -> Iterator[tuple[LinkUrl, LinkUrl]]:
    url = parse_link_url(link)
    link_class = registry.link_class(url.scheme)
    assert isinstance(link_class, LabPairing)
    with link_class.lab_pair(url, lab.sides) as urls:
        yield urls


def side(lab: TwoHosts, urls: tuple[LinkUrl, LinkUrl], index: int,
         extra: Sequence[str]) -> LinkbridgeProcess:
    host = (lab.a, lab.b)[index]
    args = tunnel_args(urls[index], (), None, OVERLAY[index], OVERLAY[1 - index])
    return LinkbridgeProcess(host, [*args, *extra], f"tunnel {'AB'[index]}")


def encrypt_counters(process: LinkbridgeProcess) -> dict[str, object]:
    """The encrypt layer's counters a stopped tunnel logged (below the link-aware queue's on a
    slow link)."""
    found = _COUNTERS.findall(process.output())
    assert found, process.output()
    queued, text = found[-1]
    counters: dict[str, object] = ast.literal_eval(text)
    if queued:
        below = counters["frames"]
        assert isinstance(below, dict)
        return below
    return counters


def drops_of(counters: dict[str, object]) -> dict[str, int]:
    value = counters["drops"]
    assert isinstance(value, dict)
    return value


def tun_rx(ns_name: str) -> int:
    """Packets the tunnel process wrote into its TUN device (the kernel counts them as rx)."""
    return link_stats(ns_name, TUN_NAME)["rx_packets"]


def tun_counts(lab: TwoHosts) -> tuple[int, int]:
    """(packets A's kernel handed A's tunnel, packets B's tunnel wrote into B's TUN device)."""
    return link_stats(lab.a, TUN_NAME)["tx_packets"], tun_rx(lab.b)


def settled_counts(lab: TwoHosts) -> tuple[int, int]:
    """tun_counts() once neither count moved for 0.2 s: nothing of A's is in flight then (a
    packet A's kernel had handed over but B had not yet delivered, counted in the first count
    and not the second, would show up later as one B delivered that A never sent)."""
    return settled(lambda: tun_counts(lab), 0.2, 5.0, "the tunnel")


def arrived_unsent(lab: TwoHosts, before: tuple[int, int]) -> int:
    """Packets on B's TUN device since `before` beyond those A's kernel sent meanwhile (its own
    IPv6 router solicitations and MLD reports come when they will, later on a busy machine):
    forged ones."""
    sent, delivered = tun_counts(lab)
    return (delivered - before[1]) - (sent - before[0])


def test_ping_and_tcp_over_encrypted_udp(lab: TwoHosts, registry: LinkRegistry,
                                         keys: Keys) -> None:
    with lab_urls(lab, registry) as urls, side(lab, urls, 0, keys.args(0)) as a, \
            side(lab, urls, 1, keys.args(1)) as b:
        result = ping(lab.a, OVERLAY[1], count=10, interval=0.01)
        assert result.received == 10, result
        transfer = tcp_transfer(lab.b, OVERLAY[1], lab.a, 3_000_000)
        assert transfer.received_bytes == 3_000_000 and transfer.intact
        shown = subprocess.run(["ip", "-n", lab.a, "-j", "link", "show", TUN_NAME],
                               capture_output=True, text=True, check=True).stdout
        # the default MTU (for a 1500-byte UDP path) less the 20 bytes of a transport frame
        assert json.loads(shown)[0]["mtu"] == 1472 - 20
    for process in (a, b):
        assert process.proc is not None and process.proc.returncode == 0, process.output()
        assert "handshake complete" in process.output()
        counters = encrypt_counters(process)
        assert not drops_of(counters), counters
        encryption = counters["encryption"]
        assert isinstance(encryption, dict) and encryption["state"] == "established"
        assert encryption["cipher"] in (AES_256_GCM, CHACHA20_POLY1305)  # as measured


@contextlib.contextmanager
def third_host(lab: TwoHosts) -> Iterator[str]:
    """A namespace C joined to B by its own veth, routed to B's underlay address."""
    name = f"{lab.a.replace('lbA-', 'lbC-')}"
    veth_c, veth_b = f"lvc{name[4:]}"[:15], f"lvd{name[4:]}"[:15]
    netns.create(name)
    try:
        commands = [
            ["ip", "link", "add", veth_c, "netns", name, "type", "veth", "peer", "name",
             veth_b, "netns", lab.b],
            ["ip", "-n", name, "addr", "add", "198.18.1.1/30", "dev", veth_c],
            ["ip", "-n", lab.b, "addr", "add", "198.18.1.2/30", "dev", veth_b],
            ["ip", "-n", name, "link", "set", veth_c, "up"],
            ["ip", "-n", lab.b, "link", "set", veth_b, "up"],
            ["ip", "-n", name, "route", "add", f"{UNDERLAY[1]}/32", "via", "198.18.1.2"],
            # B accepts the spoofed source on this interface (no reverse-path filter)
            ["ip", "netns", "exec", lab.b, "sysctl", "-qw", f"net.ipv4.conf.{veth_b}.rp_filter=0",
             "net.ipv4.conf.all.rp_filter=0"],
        ]
        for command in commands:
            subprocess.run(command, check=True, capture_output=True)
        yield name
    finally:
        netns.remove(name)  # takes its veth, and so B's end, with it


def spoofed_udp(payload: bytes, source: tuple[str, int], destination: tuple[str, int]) -> bytes:
    """An IPv4/UDP datagram with the given source (the kernel fills the IP checksum)."""
    udp = struct.pack("!HHHH", source[1], destination[1], 8 + len(payload), 0) + payload
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), random.getrandbits(16), 0,
                         64, socket.IPPROTO_UDP, 0, socket.inet_aton(source[0]),
                         socket.inet_aton(destination[0]))
    return header + udp


def test_frames_injected_with_the_peers_address_are_dropped_and_counted(
        lab: TwoHosts, registry: LinkRegistry, keys: Keys, run_dir: object) -> None:
    with lab_urls(lab, registry) as urls, side(lab, urls, 0, keys.args(0)), \
            side(lab, urls, 1, keys.args(1)) as b:
        assert ping(lab.a, OVERLAY[1], count=3, interval=0.01).received == 3
        port = int(urls[0].target.rsplit(":", 1)[1])  # both sides use the lab port
        rng = random.Random(5)
        plain_ping = bytes.fromhex("4500001c0001000040017a") + bytes(17)
        forged = [plain_ping, bytes([0xB0]) + rng.randbytes(60),
                  *(bytes([0xB0 | n]) + rng.randbytes(40) for n in range(16)),
                  bytes([0x80]) + rng.randbytes(120), bytes([0x90]) + rng.randbytes(65),
                  *(rng.randbytes(rng.randrange(1, 200)) for _ in range(200))]
        before = settled_counts(lab)
        with third_host(lab) as attacker:
            send_spoofed(attacker, forged, port)
            time.sleep(0.5)
        assert arrived_unsent(lab, before) <= 0  # not one reached B's TUN device
        assert ping(lab.a, OVERLAY[1], count=3, interval=0.01).received == 3
        table = status().stdout
        line = r"encryption established \(\S+\), last handshake .* ago .*drops .*auth="
        assert re.search(line, table), table
        documents = status_json()
        layers = [doc["link_side"] for doc in documents]
        assert {layer["encryption"]["state"] for layer in layers} == {"established"}
        assert sum(layer["drops"].get("auth", 0) + layer["drops"].get("unknown_key", 0)
                   for layer in layers) >= 17
    counters = encrypt_counters(b)
    drops = drops_of(counters)
    assert sum(drops.values()) == len(forged), drops
    assert drops["auth"] + drops.get("unknown_key", 0) >= 17 and drops["not_encrypted"] >= 1


@contextlib.contextmanager
def recording(lab: TwoHosts, port: int) -> Iterator[list[bytes]]:
    """The UDP payloads A sends to B's link port while the block runs, read off B's veth."""
    with netns.inside(lab.b):
        sniffer = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
    sniffer.bind((lab.veth_b, 0x0800))
    sniffer.settimeout(0.05)
    frames: list[bytes] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                packet = sniffer.recv(65535)
            except TimeoutError:
                continue
            header = (packet[0] & 0x0F) * 4
            if (packet[9] == socket.IPPROTO_UDP and packet[12:16] == socket.inet_aton(UNDERLAY[0])
                    and struct.unpack_from("!H", packet, header + 2)[0] == port):
                frames.append(packet[header + 8:])

    reader = threading.Thread(target=read)
    reader.start()
    try:
        yield frames
    finally:
        done.set()
        reader.join()
        sniffer.close()


def send_spoofed(attacker: str, frames: Sequence[bytes], port: int) -> None:
    """Send `frames` to B's link port from namespace C, with A's address and port."""
    with netns.inside(attacker):
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    with raw:
        for frame in frames:
            raw.sendto(spoofed_udp(frame, (UNDERLAY[0], port), (UNDERLAY[1], port)),
                       (UNDERLAY[1], 0))


def test_recorded_frames_sent_again_are_refused_during_and_after_a_rekey(
        lab: TwoHosts, registry: LinkRegistry, keys: Keys) -> None:
    timers = ["--rekey-interval", "2", "--handshake-retry", "0.5"]
    with lab_urls(lab, registry) as urls, side(lab, urls, 0, [*keys.args(0), *timers]), \
            side(lab, urls, 1, [*keys.args(1), *timers]) as b, third_host(lab) as attacker:
        port = int(urls[0].target.rsplit(":", 1)[1])
        with recording(lab, port) as recorded:
            assert ping(lab.a, OVERLAY[1], count=10, interval=0.01).received == 10
        data = [frame for frame in recorded if frame[0] >> 4 == 0xB]
        assert len(data) >= 10, recorded
        before = settled_counts(lab)
        send_spoofed(attacker, recorded, port)  # during the session
        time.sleep(0.3)
        assert arrived_unsent(lab, before) <= 0
        # keep traffic going past the rekey interval and the old session's end (3 s)
        assert ping(lab.a, OVERLAY[1], count=40, interval=0.1).received >= 38
        before = settled_counts(lab)
        send_spoofed(attacker, recorded, port)  # after rekeys
        time.sleep(0.3)
        assert arrived_unsent(lab, before) <= 0
        assert ping(lab.a, OVERLAY[1], count=3, interval=0.01).received == 3
    counters = encrypt_counters(b)
    drops = drops_of(counters)
    encryption = counters["encryption"]
    assert isinstance(encryption, dict) and encryption["handshakes"] >= 3, counters
    assert sum(drops.values()) >= 2 * len(recorded), (drops, len(recorded))
    assert drops["replay"] >= len(data), drops


def udp_buffer_errors(ns_name: str) -> int:
    """Datagrams the kernel of `ns_name` dropped for a full socket buffer (never seen by B)."""
    return snmp_counters(ns_name)["Udp"]["RcvbufErrors"]


BURST = 100  # forged frames sent at once: ~130 kB of socket buffer, a third of B's


def drained(ns_name: str, port: int, timeout: float = 10.0) -> None:
    """Wait until B has read what its link port's socket held (under a loaded machine's
    scheduling a fixed pace overflowed it: 737 of 20,832 frames once)."""
    deadline = time.monotonic() + timeout
    while udp_queued(ns_name, port) and time.monotonic() < deadline:
        time.sleep(0.002)


def test_every_bit_flip_and_fuzzed_frames_sent_into_a_real_tunnel(
        lab: TwoHosts, registry: LinkRegistry, keys: Keys) -> None:
    """A data frame recorded on the wire, each of its single-bit flips, and 20,000 fuzzed
    frames (half of them aimed at the live session: its first byte, a random rest) sent to B
    with A's address: not one reaches B's TUN device, each is a counted drop, and the tunnel
    still carries traffic."""
    with lab_urls(lab, registry) as urls, side(lab, urls, 0, keys.args(0)), \
            side(lab, urls, 1, keys.args(1)) as b, third_host(lab) as attacker:
        port = int(urls[0].target.rsplit(":", 1)[1])
        with recording(lab, port) as recorded:
            assert ping(lab.a, OVERLAY[1], count=3, interval=0.01).received == 3
        frame = next(frame for frame in recorded if frame[0] >> 4 == 0xB and len(frame) > 80)
        flips = [bytes(byte ^ (1 << bit) if at == index else byte
                       for at, byte in enumerate(frame))
                 for index in range(len(frame)) for bit in range(8)]
        rng = random.Random(23)
        fuzz = [(frame[:1] if n % 2 else b"") + rng.randbytes(rng.randrange(1, 160))
                for n in range(20_000)]
        forged = flips + fuzz
        before, lost_before = settled_counts(lab), udp_buffer_errors(lab.b)
        for at in range(0, len(forged), BURST):  # paced: B's socket buffer is not the test
            drained(lab.b, port)
            send_spoofed(attacker, forged[at:at + BURST], port)
        drained(lab.b, port)
        time.sleep(0.5)  # B's last reads handled
        assert arrived_unsent(lab, before) <= 0
        assert ping(lab.a, OVERLAY[1], count=3, interval=0.01).received == 3
        lost = udp_buffer_errors(lab.b) - lost_before
    drops = drops_of(encrypt_counters(b))
    assert lost < len(forged) // 100, lost
    assert sum(drops.values()) == len(forged) - lost, (drops, lost)
    assert drops["auth"] >= len(flips) // 2 and drops["auth"] + drops["replay"] >= 10_000


def test_wrong_peer_key_carries_nothing_and_says_why(lab: TwoHosts, registry: LinkRegistry,
                                                     keys: Keys) -> None:
    retry = ["--handshake-retry", "0.5"]  # A's first initiation went out before B was up
    with lab_urls(lab, registry) as urls, side(lab, urls, 0, [*keys.args(0), *retry]) as a, \
            side(lab, urls, 1, [*keys.args(1, peer=keys.stranger), *retry]) as b:
        result = ping(lab.a, OVERLAY[1], count=5, interval=0.1, timeout=0.5)
        assert result.received == 0
        assert tun_rx(lab.b) == 0 and tun_rx(lab.a) == 0
    assert "not the configured peer" in b.output(), b.output()
    assert "--peer-public-key is wrong" in a.output(), a.output()
    assert drops_of(encrypt_counters(b))["handshake_peer"] >= 1
    assert drops_of(encrypt_counters(a))["handshake_mac"] >= 1


def test_the_sides_agree_on_a_cipher_or_say_why_not(lab: TwoHosts, registry: LinkRegistry,
                                                    keys: Keys, run_dir: object) -> None:
    retry = ["--handshake-retry", "0.5"]  # A's first initiation went out before B was up
    with lab_urls(lab, registry) as urls:
        with side(lab, urls, 0, [*keys.args(0), "--cipher", CHACHA20_POLY1305]) as a, \
                side(lab, urls, 1, keys.args(1)) as b:
            assert ping(lab.a, OVERLAY[1], count=5, interval=0.01).received == 5
            transfer = tcp_transfer(lab.b, OVERLAY[1], lab.a, 1_000_000)
            assert transfer.received_bytes == 1_000_000 and transfer.intact
            assert {doc["link_side"]["encryption"]["cipher"] for doc in status_json()} == {
                CHACHA20_POLY1305}
        with side(lab, urls, 0, [*keys.args(0), *retry, "--cipher", AES_256_GCM]) as a, \
                side(lab, urls, 1, [*keys.args(1), *retry, "--cipher", CHACHA20_POLY1305]) as b:
            assert ping(lab.a, OVERLAY[1], count=5, interval=0.1, timeout=0.5).received == 0
            assert tun_rx(lab.b) == 0
    assert "allows the ciphers aes-256-gcm, this side chacha20-poly1305" in b.output(), (
        b.output())
    assert drops_of(encrypt_counters(b))["handshake_cipher"] >= 1
    assert encrypt_counters(a)["encryption"]["state"] == "handshaking"  # type: ignore[index]


def first_reply_after(ns_name: str, destination: str, limit: float) -> float:
    """Seconds until a ping gets through, pinging every 50 ms; `limit` at most."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if ping(ns_name, destination, count=1, interval=0, timeout=0.05).received:
            return time.monotonic() - start
    return limit


@pytest.mark.parametrize("restarted", [1, 0], ids=["receiver", "sender"])
def test_a_killed_side_restarted_recovers_by_itself(lab: TwoHosts, registry: LinkRegistry,
                                                    keys: Keys, restarted: int) -> None:
    """A pings B throughout; one side is SIGKILLed and started again with the same keys."""
    with lab_urls(lab, registry) as urls, side(lab, urls, 0, keys.args(0)) as a, \
            side(lab, urls, 1, keys.args(1)) as b:
        assert ping(lab.a, OVERLAY[1], count=3, interval=0.01).received == 3
        killed = (a, b)[restarted].proc
        assert killed is not None
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        with side(lab, urls, restarted, keys.args(restarted)) as again:
            took = first_reply_after(lab.a, OVERLAY[1], 5.0)
            assert took < 2.0, (took, again.output())
            assert ping(lab.a, OVERLAY[1], count=5, interval=0.01).received == 5


@pytest.mark.parametrize("link", ["sim:?loss=20%", "sim:?rate=9600&mtu=64"])
def test_handshake_completes_over_lossy_and_slow_radio_links(
        lab: TwoHosts, registry: LinkRegistry, keys: Keys, link: str) -> None:
    """Retries get a handshake through 20% loss; fragments carry it over 64-byte frames at
    9600 bit/s (benchmarks/encryption.py measures how long it takes)."""
    extra = ["--handshake-retry", "1", "--mtu", "576"]
    with lab_urls(lab, registry, link) as urls, \
            side(lab, urls, 0, [*keys.args(0), *extra]) as a, \
            side(lab, urls, 1, [*keys.args(1), *extra]) as b:
        replies = ping(lab.a, OVERLAY[1], count=10, interval=0.1, timeout=1.0)
        assert replies.received >= 3, (replies, a.output()[-3000:], b.output()[-3000:])
    for process in (a, b):
        encryption = encrypt_counters(process)["encryption"]
        assert isinstance(encryption, dict) and encryption["handshakes"] >= 1, process.output()


@pytest.mark.parametrize("link", ["serial:?baud=115200&crc=1", "udp:?mtu=64"])
def test_ping_over_other_links(lab: TwoHosts, registry: LinkRegistry, keys: Keys,
                               link: str) -> None:
    """The layer works over a byte-stream link and over 64-byte frames (fragments)."""
    mtu = ["--mtu", "576"] if "mtu=64" in link else []
    with lab_urls(lab, registry, link) as urls, side(lab, urls, 0, [*keys.args(0), *mtu]), \
            side(lab, urls, 1, [*keys.args(1), *mtu]) as b:
        replies = ping(lab.a, OVERLAY[1], count=5, interval=0.05, size=500)
        assert replies.received == 5, (replies, b.output())
    assert not drops_of(encrypt_counters(b)), b.output()
