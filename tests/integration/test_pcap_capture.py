"""`--pcap`: tcpdump reads the file and sees the pings that crossed the tunnel, both ways."""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

from linkbridge.lab import netns
from linkbridge.lab.probes import echo_request, ping
from linkbridge.lab.processes import LinkbridgeProcess
from linkbridge.lab.run import tunnel_args
from linkbridge.lab.topology import OVERLAY, TwoHosts
from linkbridge.plugin.registry import LinkRegistry, get_plugin_manager
from linkbridge.plugin.url import parse_link_url
from linkbridge.wire.packet import internet_checksum

needs_tcpdump = pytest.mark.skipif(shutil.which("tcpdump") is None,
                                   reason="needs tcpdump (apt-get install tcpdump)")


def tcpdump(path: Path, *expression: str) -> list[str]:
    done = subprocess.run(["tcpdump", "-n", "-r", str(path), *expression],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "link-type RAW" in done.stderr
    return done.stdout.splitlines()


@needs_tcpdump
def test_tcpdump_sees_echo_requests_and_replies(lab: TwoHosts, tmp_path: Path) -> None:
    capture = tmp_path / "a.pcap"
    url = parse_link_url("udp")
    link_class = LinkRegistry(get_plugin_manager()).link_class("udp")
    with link_class.lab_pair(url, lab.sides) as (url_a, url_b), \
            LinkbridgeProcess(lab.a, [*tunnel_args(url_a, (), None, OVERLAY[0], OVERLAY[1]),
                                      "--pcap", str(capture)], "tunnel A"), \
            LinkbridgeProcess(lab.b, tunnel_args(url_b, (), None, OVERLAY[1], OVERLAY[0]),
                              "tunnel B"):
        assert ping(lab.a, OVERLAY[1], count=7, interval=0.01).received == 7
    assert os.stat(capture).st_mode & 0o777 == 0o600
    lines = tcpdump(capture, "icmp")
    requests = [line for line in lines if f"{OVERLAY[0]} > {OVERLAY[1]}: ICMP echo request" in line]
    replies = [line for line in lines if f"{OVERLAY[1]} > {OVERLAY[0]}: ICMP echo reply" in line]
    assert (len(requests), len(replies)) == (7, 7), lines


@needs_tcpdump
def test_pcap_limit_keeps_a_readable_file(lab: TwoHosts, tmp_path: Path) -> None:
    capture = tmp_path / "small.pcap"
    args = ["up", "--rx", "2001", "--tx", "2002", "--remote", OVERLAY[1], "--address",
            OVERLAY[0], "--name", "lbcap", "--pcap", str(capture), "--pcap-limit", "400"]
    with LinkbridgeProcess(lab.a, args, "capped") as tunnel:
        ping(lab.a, OVERLAY[1], count=20, interval=0, timeout=0.05)  # unanswered: outbound only
    assert capture.stat().st_size <= 400
    assert 1 <= len(tcpdump(capture, "icmp")) < 20
    assert "recording stopped" in tunnel.output()


def test_unwritable_pcap_is_one_line_before_setup(lab: TwoHosts) -> None:
    from tests.helpers.commands import run_in
    from tests.helpers.namespace_state import devices

    done = run_in(lab.a, "up", "--rx", "2001", "--tx", "2002", "--remote", "198.19.41.0/24",
                  "--name", "lbnocap", "--pcap", "/nonexistent-dir/x.pcap")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "linkbridge: error: cannot write --pcap file '/nonexistent-dir/x.pcap': "
        "No such file or directory"]
    assert "lbnocap" not in devices(lab.a)


def ipv4_echo(source: str, destination: str, seq: int) -> bytes:
    """A whole IPv4 packet holding an ICMP echo request, as a tunnel would hand it over."""
    icmp = echo_request(0x4242, seq, b"linkbridge")
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), seq, 0, 64, 1, 0,
                         socket.inet_aton(source), socket.inet_aton(destination))
    checksum = internet_checksum(header)
    return header[:10] + struct.pack("!H", checksum) + header[12:] + icmp


@needs_tcpdump
def test_link_half_records_what_the_external_tunnel_hands_over(lab: TwoHosts,
                                                                tmp_path: Path) -> None:
    capture = tmp_path / "link.pcap"
    args = ["link", "udp:198.18.0.2:47031", "--rx", "2201", "--tx", "2202", "--pcap",
            str(capture)]
    with LinkbridgeProcess(lab.a, args, "link half"):
        with netns.inside(lab.a):
            external_tunnel = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with external_tunnel:
            external_tunnel.bind(("127.0.0.1", 2201))
            for seq in range(3):
                external_tunnel.sendto(ipv4_echo(OVERLAY[0], OVERLAY[1], seq),
                                       ("127.0.0.1", 2202))
            time.sleep(0.5)
    lines = tcpdump(capture, "icmp")
    assert sum("ICMP echo request, id 16962" in line for line in lines) == 3, lines
