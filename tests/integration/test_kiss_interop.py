"""The kiss: link against a tncattach stand-in of the tests' own (tests/helpers/tnc_peer.py: a
kernel TUN device with its packet information header, or a TAP device, on KISS over a pty):
a too-large tunnel MTU refused, pings of every size full of FEND/FESC bytes, and in Ethernet
mode the kernel's own ARP cache kept right across restarts of either side, probes unanswered."""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyroute2 import IPRoute

from linkbridge.lab import netns
from linkbridge.lab.probes import echo_reply_seq, echo_request, ping
from linkbridge.lab.processes import LinkbridgeProcess, spawn
from linkbridge.lab.topology import TwoHosts
from linkbridge.lab.uart import UartCable
from tests.helpers.commands import stop

PEER_PROGRAM = Path(__file__).parents[1] / "helpers" / "tnc_peer.py"
MTU = 256  # the link's default, and tncattach -m 256
OURS, THEIRS = "198.19.0.1", "198.19.0.2"
TAP = "tnc0"
ETH_P_ARP = 0x0806


@contextlib.contextmanager
def tnc_peer(ns: str, line: str, ethernet: bool) -> Iterator[None]:
    """The stand-in on `line` in namespace `ns`, device tnc0 at THEIRS/24, until the block ends."""
    argv = [sys.executable, str(PEER_PROGRAM), line, "--name", TAP, "--mtu", str(MTU),
            "--address", f"{THEIRS}/24", "--noipv6", *(["--ethernet"] if ethernet else [])]
    proc = spawn(ns, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 10.0)
        line_read = proc.stdout.readline() if ready else b""
        assert line_read == b"READY\n", proc.stderr.read() if proc.stderr else line_read
        yield
    finally:
        stop(proc, 5.0)


def linkbridge(ns: str, line: str, mode: str, *extra: str) -> LinkbridgeProcess:
    return LinkbridgeProcess(ns, ["up", "--name", "lbk0", "--link", f"kiss:{line}?mode={mode}",
                                  "--address", f"{OURS}/24", *extra], f"linkbridge {mode}")


def flows_within(ns: str, destination: str, limit: float) -> float:
    """Seconds until a ping from `ns` to `destination` is answered (fails after `limit`)."""
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < limit:
        if ping(ns, destination, count=1, interval=0.0, timeout=0.1).received:
            return elapsed
    pytest.fail(f"no ping from {ns} to {destination} answered within {limit} s")


def sweep(ns: str, destination: str, sizes: range) -> list[int]:
    """Echo requests of every payload size in `sizes`, full of C0 DB (FEND, FESC; what `ping
    -p c0db -s SIZE` sends), one at a time: the sizes whose reply did not come back intact
    within a second."""
    with netns.inside(ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    failed = []
    with sock:
        for size in sizes:
            payload = (b"\xc0\xdb" * (size // 2 + 1))[:size]
            sock.sendto(echo_request(0x4C42, size, payload), (destination, 0))
            deadline = time.monotonic() + 1.0
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                try:
                    packet = sock.recv(65535)
                except TimeoutError:
                    failed.append(size)
                    break
                if echo_reply_seq(packet, 0x4C42) == size:
                    if packet[(packet[0] & 0x0F) * 4 + 8:] != payload:
                        failed.append(size)
                    break
    return failed


def test_a_tunnel_mtu_above_the_links_is_refused_and_nothing_is_left(lab: TwoHosts) -> None:
    """(Every mode's refusal: tests/unit/test_kiss_link.py; here the exit status and that no
    device was made.)"""
    for mode in ("ethernet",):
        done = subprocess.run(
            [sys.executable, "-m", "linkbridge", "up", "--name", "lbk0", "--link",
             f"kiss:/dev/null?mode={mode}", "--mtu", "500", "--address", f"{OURS}/24"],
            capture_output=True, text=True, timeout=60,
            preexec_fn=lambda: netns.enter(lab.a))
        assert done.returncode == 2, done.stderr
        [line] = done.stderr.splitlines()
        assert "tunnel MTU 500 is above the link's MTU 256" in line
        assert f"tncattach{' --ethernet' if mode == 'ethernet' else ''} (mode={mode})" in line
        with netns.inside(lab.a), IPRoute() as ip:
            assert not ip.link_lookup(ifname="lbk0")


@pytest.mark.parametrize("mode", ["tun", "ethernet"])
def test_pings_of_every_size_full_of_fend_and_fesc_cross_to_tncattach(lab: TwoHosts,
                                                                      mode: str) -> None:
    largest = MTU - 28  # IPv4 and ICMP headers
    with UartCable(None) as cable, tnc_peer(lab.b, cable.path_b, mode == "ethernet"), \
            linkbridge(lab.a, cable.path_a, mode):
        flows_within(lab.a, THEIRS, 5.0)  # the first ARP exchange
        assert sweep(lab.a, THEIRS, range(largest + 1)) == []
        assert sweep(lab.b, OURS, range(largest - 2, largest + 1)) == []  # the peer asks too


def arp_frame(source_mac: bytes, sender_ip: str, target_ip: str) -> bytes:
    """A broadcast ARP request (sender 0.0.0.0: a probe)."""
    return b"".join((b"\xff" * 6, source_mac, struct.pack("!HHHBBH", ETH_P_ARP, 1, 0x0800, 6, 4, 1),
                     source_mac, socket.inet_aton(sender_ip), bytes(6),
                     socket.inet_aton(target_ip)))


def answers(sock: socket.socket, wait: float) -> list[str]:
    """The addresses ARP replies arriving within `wait` seconds claim."""
    claimed = []
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            frame = sock.recv(2048)
        except TimeoutError:
            break
        if frame[12:14] == b"\x08\x06" and frame[20:22] == b"\x00\x02":
            claimed.append(socket.inet_ntoa(frame[28:32]))
    return claimed


def probes_answered(ns: str) -> tuple[list[str], list[str]]:
    """From the peer's TAP: what answers two RFC 5227 probes got (for its own address and for
    linkbridge's), and what an ordinary request for linkbridge's address got."""
    with netns.inside(ns):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
        with IPRoute() as ip:
            mac = ip.get_links(ip.link_lookup(ifname=TAP)[0])[0].get_attr("IFLA_ADDRESS")
    with sock:
        sock.bind((TAP, ETH_P_ARP))
        source = bytes.fromhex(mac.replace(":", ""))
        sock.send(arp_frame(source, "0.0.0.0", THEIRS))
        sock.send(arp_frame(source, "0.0.0.0", OURS))
        to_probes = answers(sock, 0.5)
        sock.send(arp_frame(source, THEIRS, OURS))
        return to_probes, answers(sock, 2.0)


def test_ethernet_traffic_flows_within_2_s_after_either_side_restarts(lab: TwoHosts) -> None:
    """The peer's kernel keeps its ARP cache across our restarts (the same derived MAC, or an
    announcement for a new `mac=`); we find the restarted peer's new MAC; probes go unanswered."""
    waited = {}
    with UartCable(None) as cable, contextlib.ExitStack() as stack:
        peer = stack.enter_context(contextlib.ExitStack())
        peer.enter_context(tnc_peer(lab.b, cable.path_b, ethernet=True))
        ours = stack.enter_context(linkbridge(lab.a, cable.path_a, "ethernet"))
        flows_within(lab.b, OURS, 5.0)
        flows_within(lab.a, THEIRS, 2.0)
        peer.close()  # tncattach restarts: a new TAP device, another MAC address
        peer.enter_context(tnc_peer(lab.b, cable.path_b, ethernet=True))
        waited["peer restarted"] = flows_within(lab.a, THEIRS, 2.0)
        for mode in ("ethernet", "ethernet&mac=02:00:00:00:00:42"):
            ours.stop()  # linkbridge restarts: by default under the same MAC, else announced
            ours = stack.enter_context(linkbridge(lab.a, cable.path_a, mode))
            waited[f"linkbridge restarted (mode={mode})"] = flows_within(lab.b, OURS, 2.0)
        to_probes, to_request = probes_answered(lab.b)
    assert to_probes == [] and to_request == [OURS]
    print(", ".join(f"{event}: traffic after {seconds:.2f} s" for event, seconds in waited.items()))
