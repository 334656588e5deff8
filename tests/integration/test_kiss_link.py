"""The kiss: and kiss+tcp: links over real ptys and TCP: conformance, what a TNC is told on
every (re)connect, a soft TNC that restarts under running tunnels, noise, and the lab."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import ClassVar

import pytest

from linkbridge.datapath.endpoint import LossReporter
from linkbridge.framing import kiss
from linkbridge.lab.probes import ping, tcp_transfer
from linkbridge.lab.run import TUN_NAME, tunnels_between
from linkbridge.lab.topology import OVERLAY, UNDERLAY, TwoHosts, link_stats
from linkbridge.lab.uart import UartCable, cable_paths
from linkbridge.plugin.conformance import LinkConformance, receive_exactly
from linkbridge.plugin.lab import LabSides
from linkbridge.plugin.link import Link
from linkbridge.plugin.registry import LinkRegistry, get_plugin_manager
from linkbridge.plugin.url import parse_link_url
from tests.helpers.kiss_relay import KissRelay, kiss_relay
from tests.helpers.pty_pair import socat_ptys
from tests.helpers.waiting import wait_for

REGISTRY = LinkRegistry(get_plugin_manager())
BAD_OPTIONS = {"mode": "slip", "tncport": "16", "call": "TOOLONGCALL", "txdelay": "soon",
               "mtu": "10", "arp": "nowhere", "peer": "N0CALL-99"}
AX25_A = "&mode=ax25&call=N0CALL-1&peer=N0CALL-2"
AX25_B = "&mode=ax25&call=N0CALL-2&peer=N0CALL-1"


class TestKissSerialConformance(LinkConformance):
    scheme = "kiss"
    bad_options: ClassVar[dict[str, str]] = {**BAD_OPTIONS, "baud": "fast"}
    max_payload = 256  # the default MTU

    @contextlib.contextmanager
    def pair(self, options: str = "") -> Iterator[tuple[str, str]]:
        with socat_ptys() as (path_a, path_b):
            yield f"kiss:{path_a}?mode=raw{options}", f"kiss:{path_b}?mode=raw{options}"

    @contextlib.contextmanager
    def unopenable(self) -> Iterator[str | None]:
        yield "kiss:/dev/linkbridge-no-such-tty"

    @contextlib.contextmanager
    def lab_sides(self) -> Iterator[LabSides]:
        yield LabSides("lbconf-a", "lbconf-b", "198.18.0.1", "198.18.0.2", cable_paths)


class TestKissTcpAx25Conformance(LinkConformance):
    scheme = "kiss+tcp"
    bad_options = BAD_OPTIONS
    max_payload = 256

    @contextlib.contextmanager
    def pair(self, options: str = "") -> Iterator[tuple[str, str]]:
        with kiss_relay(forked=True) as relay:
            target = f"kiss+tcp:127.0.0.1:{relay.port}?beacon=0"
            yield f"{target}{AX25_A}{options}", f"{target}{AX25_B}{options}"


def opened(url: str) -> Link:
    link = REGISTRY.create_link(url)
    link.open()
    return link


def test_tnc_is_told_its_parameters_on_open_and_after_every_reconnect() -> None:
    setup = (b"KISS ON\r" + kiss.encode_command(kiss.TXDELAY, bytes([30]))
             + kiss.encode_command(kiss.PERSISTENCE, bytes([63]))
             + kiss.encode_command(kiss.SLOTTIME, bytes([10]))
             + kiss.encode_command(kiss.FULLDUPLEX, bytes([0])))
    with KissRelay() as relay:
        link = opened(f"kiss+tcp:127.0.0.1:{relay.port}?init=KISS ON\\r&initwait=0&"
                      "txdelay=300ms&persist=63&slottime=100ms&fullduplex=0&exit=1")
        try:
            wait_for(lambda: relay.received[:1] == [setup], 3.0,
                     lambda: f"the setup, the TNC got {relay.received}")
            relay.stop()
            relay.start()  # the soft TNC restarts on the same port
            deadline = time.monotonic() + 5.0
            while relay.connections() < 2 and time.monotonic() < deadline:
                link.receive(0.1)  # the receiving side reconnects
            wait_for(lambda: relay.received[1:] == [setup], 3.0,
                     lambda: f"the setup again, the TNC got {relay.received}")
            assert link.counters.drops == {}
        finally:
            link.close()
        wait_for(lambda: relay.received[1].endswith(kiss.EXIT_KISS), 3.0, "the exit from KISS")


def test_a_tnc_not_there_yet_is_waited_for_and_sends_meanwhile_are_counted() -> None:
    with KissRelay() as relay:
        port = relay.port
    link = opened(f"kiss+tcp:127.0.0.1:{port}")  # nothing listens: open() still succeeds
    try:
        link.send(b"\x45" + bytes(19))
        assert link.counters.drops["not_connected"] == 1
        with KissRelay(port=port) as relay, contextlib.closing(
                opened(f"kiss+tcp:127.0.0.1:{port}")) as peer:
            deadline = time.monotonic() + 5.0
            while relay.connections() < 2 and time.monotonic() < deadline:
                link.receive(0.1)
            link.send(b"late but there")
            assert receive_exactly(peer, 1, 3.0) == [b"late but there"]
    finally:
        link.close()


def test_smack_and_flexnet_frames_from_mkiss_are_accepted() -> None:
    with UartCable(None) as cable, contextlib.closing(opened(f"kiss:{cable.path_b}")) as link:
        with open(cable.path_a, "wb", buffering=0) as line:
            line.write(kiss.smack_frame(b"smack") + kiss.flex_frame(b"flex")
                       + kiss.encode_data(b"plain"))
        assert receive_exactly(link, 3, 3.0) == [b"smack", b"flex", b"plain"]


def test_a_damaged_frame_is_reported_as_loss_a_frame_for_another_port_is_not() -> None:
    """A SMACK frame whose CRC fails is a loss the layer above hears of (LossReporter); a
    frame for another TNC port is only a counted drop."""
    with UartCable(None) as cable, contextlib.closing(opened(f"kiss:{cable.path_b}")) as link:
        assert isinstance(link, LossReporter)
        heard: list[str] = []
        link.on_loss(heard.append)
        damaged = bytearray(kiss.smack_frame(b"smack"))
        damaged[2] ^= 0x01  # a payload byte (no FEND or FESC around it)
        with open(cable.path_a, "wb", buffering=0) as line:
            line.write(bytes(damaged) + kiss.encode_data(b"port 3", 3)
                       + kiss.encode_data(b"plain"))
        assert receive_exactly(link, 1, 3.0) == [b"plain"]
    assert heard == [kiss.CRC]
    assert link.counters.drops == {kiss.CRC: 1, kiss.OTHER_PORT: 1}


def test_bad_targets_are_one_line_errors() -> None:
    from linkbridge.errors import ConfigError, LinkError

    with pytest.raises(ConfigError, match="needs a device"):
        REGISTRY.create_link("kiss:")
    with pytest.raises(ConfigError, match="bad target 'nowhere'"):
        REGISTRY.create_link("kiss+tcp:nowhere")
    with pytest.raises(ConfigError, match="mode=ax25 needs our callsign"):
        REGISTRY.create_link("kiss:/dev/ttyS0?mode=ax25")
    with pytest.raises(ConfigError, match="need mode=ax25"):
        REGISTRY.create_link("kiss:/dev/ttyS0?beacon=600s")
    with UartCable(None) as cable, contextlib.closing(opened(f"kiss:{cable.path_a}")), \
            pytest.raises(LinkError, match=r"ttyA: in use by another program$"):
        opened(f"kiss:{cable.path_a}")


def test_ax25_beacon_identifies_the_station() -> None:
    with UartCable(None) as cable, contextlib.closing(
            opened(f"kiss:{cable.path_a}?mode=ax25&call=N0CALL-1&beacon=200ms")) as link:
        line = os.open(cable.path_b, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            heard = b""
            deadline = time.monotonic() + 3.0
            while heard.count(b"N0CALL-1") < 2 and time.monotonic() < deadline:
                link.receive(0.05)  # the beacon goes out from the receiving side's loop
                with contextlib.suppress(BlockingIOError):
                    heard += os.read(line, 4096)
        finally:
            os.close(line)
    assert heard.count(b"N0CALL-1") >= 2  # at least two beacons, 0.2 s apart


def test_traffic_resumes_within_3_s_after_the_soft_tnc_restarts(lab: TwoHosts) -> None:
    with KissRelay(UNDERLAY[0], ns=lab.a) as relay:
        url = parse_link_url(f"kiss+tcp:{UNDERLAY[0]}:{relay.port}?mtu=1000")
        with tunnels_between(lab, url, url) as (side_a, side_b):
            assert ping(lab.a, OVERLAY[1], count=3, interval=0.05).received == 3
            relay.stop()
            assert ping(lab.a, OVERLAY[1], count=3, interval=0.05, timeout=0.3).received == 0
            relay.start()
            restarted = time.monotonic()
            while time.monotonic() - restarted < 3.0:
                if ping(lab.a, OVERLAY[1], count=1, timeout=0.2).received:
                    break
            resumed = time.monotonic() - restarted
            assert resumed < 3.0, f"no traffic {resumed:.1f} s after the TNC came back"
            transfer = tcp_transfer(lab.b, OVERLAY[1], lab.a, 100_000, timeout=30.0)
            assert transfer.intact
            assert side_a.proc.poll() is None
            assert side_b.proc.poll() is None
    print(f"traffic resumed {resumed:.2f} s after the soft TNC restarted")


@pytest.mark.parametrize("mode", ["?mode=raw", "?mode=ax25&call=N0CALL-{side}&arp=any",
                                  "?mode=tun", "?mode=ethernet"])
def test_noise_on_the_line_never_reaches_the_tun(lab: TwoHosts, mode: str) -> None:
    with UartCable(115200, noise=0.5, seed=7) as cable:
        url_a = parse_link_url(f"kiss:{cable.path_a}{mode.format(side=1)}&mtu=576")
        url_b = parse_link_url(f"kiss:{cable.path_b}{mode.format(side=2)}&mtu=576")
        with tunnels_between(lab, url_a, url_b):
            result = ping(lab.a, OVERLAY[1], count=20, interval=0.02)
            transfer = tcp_transfer(lab.b, OVERLAY[1], lab.a, 20_000, timeout=30.0)
            stats = _settled(lab)
        noise_bytes = cable.stats["a"].garbage + cable.stats["b"].garbage
    assert noise_bytes > 0
    assert result.received >= 18 and transfer.intact
    a, b = stats  # every packet that entered a TUN was one the other TUN sent
    assert b["rx_packets"] == a["tx_packets"] and a["rx_packets"] == b["tx_packets"]


def _settled(lab: TwoHosts) -> tuple[dict[str, int], dict[str, int]]:
    deadline = time.monotonic() + 5.0
    while True:
        a, b = link_stats(lab.a, TUN_NAME), link_stats(lab.b, TUN_NAME)
        if (a["tx_packets"] == b["rx_packets"] and b["tx_packets"] == a["rx_packets"]) \
                or time.monotonic() > deadline:
            return a, b
        time.sleep(0.2)


def test_linkbridge_lab_over_kiss(root: None) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "linkbridge", "lab", "--link", "kiss?mode=ax25&call=N0CALL",
         "--count", "5"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "linkbridge lab over kiss" in done.stdout
    assert "content intact" in done.stdout
