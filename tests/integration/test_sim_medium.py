"""The simulated medium as a real process on loopback: three sim:?duplex=half links join it and
hear each other's frames after their airtime, and bad datagrams get one-line refusals without
stopping it."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from linkbridge_sim.links import SimLink
from linkbridge_sim.medium import query_stats

from linkbridge.errors import LinkError
from linkbridge.plugin import free_port, resolve_options
from linkbridge.plugin.conformance import receive_exactly


@contextlib.contextmanager
def medium_process(port: int, *extra: str) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "linkbridge_sim.medium", "--listen", f"127.0.0.1:{port}",
         "--seed", "1", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("ready 127.0.0.1:")
        yield process
    finally:
        process.terminate()
        process.wait(10)


def station(port: int, **options: str) -> SimLink:
    raw = {"duplex": "half", "rate": "96000", "persist": "255", "seed": "1", **options}
    link = SimLink(f"127.0.0.1:{port}", resolve_options("link sim:", SimLink.options, raw))
    link.open()
    return link


def test_three_stations_share_one_channel() -> None:
    port = free_port()
    with medium_process(port) as process:
        links = [station(port) for _ in range(3)]
        try:
            frame = bytes(range(200))
            sent = time.monotonic()
            links[0].send(frame)
            for other in links[1:]:
                assert receive_exactly(other, 1, timeout=2.0) == [frame]
            assert time.monotonic() - sent >= 200 * 8 / 96000  # not before its airtime
            assert links[0].receive(0.2) == []  # a sender does not hear itself
            stats = query_stats(("127.0.0.1", port))
            assert len(stats["stations"]) == 3
            counts = sorted((s["sent"], s["delivered"]) for s in stats["stations"].values())
            assert counts == [(0, 0), (0, 0), (1, 1)]
        finally:
            for link in links:
                link.close()
        process.terminate()
        _, errors = process.communicate(timeout=10)
        assert "'sent': 1" in errors  # the counters are logged on the way out
        assert "Warning" not in errors, errors  # e.g. runpy's: the package imported the module


def test_bad_datagrams_are_refused_in_one_line_and_the_medium_keeps_going() -> None:
    port = free_port()
    with medium_process(port) as process, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2.0)
        sock.connect(("127.0.0.1", port))
        for datagram, reason in ((b"F" + bytes(40), b"not joined"), (b"Zjunk", b"unknown"),
                                 (b"J{not json", b"bad join"), (b'J{"name": 3}', b"bad join"),
                                 (b'J{"name": "x", "radio": {"rate": NaN}}', b"finite"),
                                 (b'J{"name": "x", "radio": {"lora": {"sf": 40}}}', b"spreading"),
                                 (b"", b"unknown")):
            sock.send(datagram)
            answer = sock.recv(2048)
            assert answer.startswith(b"E") and reason in answer and b"\n" not in answer
        sock.send(b"J" + json.dumps({"name": "ok", "radio": {"rate": 9600}}).encode())
        assert sock.recv(2048).startswith(b"A")
        assert process.poll() is None


def test_a_station_without_a_medium_fails_with_one_line() -> None:
    with pytest.raises(LinkError, match=r"no medium answers at 127\.0\.0\.1:") as info:
        station(free_port())
    assert "\n" not in str(info.value)


def test_a_frame_the_loss_model_lost_still_takes_its_airtime_on_the_medium() -> None:
    """duplex=half takes loss_airtime by default: the lost frame goes on the air (`L`), counted
    as sent and lost, and nobody receives it; with loss_airtime=off it never reaches the air."""
    port = free_port()
    with medium_process(port):
        links = [station(port, loss="100%"), station(port),
                 station(port, loss="100%", loss_airtime="off")]
        try:
            links[0].send(bytes(120))
            links[2].send(bytes(120))
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                counts = sorted((s["sent"], s["lost"], s["airtime"])
                                for s in query_stats(("127.0.0.1", port))["stations"].values())
                if counts[-1][1]:  # its data has ended
                    break
            assert counts == [(0, 0, 0.0), (0, 0, 0.0), (1, 1, pytest.approx(120 * 8 / 96000))]
            assert links[1].receive(0.2) == []
        finally:
            for link in links:
                link.close()


def test_named_stations_get_their_unicast_and_broadcast_and_know_the_sender() -> None:
    """a, b, c join by name (addressed), d as before: a's frame for b reaches b alone, with a's
    name; a's frame for all reaches b, c (named) and d (bare); a frame from a station no peer
    names is counted, as is a bad address at the medium."""
    port = free_port()
    with medium_process(port):
        links = {name: station(port, station=name) for name in "abc"}
        old = station(port)
        try:
            a, b, c = links["a"], links["b"], links["c"]
            b.set_stations(["a"])  # type: ignore[attr-defined]
            c.set_stations(["b"])  # type: ignore[attr-defined]
            a.send_to("b", b"for b")  # type: ignore[attr-defined]
            assert b.receive_from(2.0) == [("a", b"for b")]  # type: ignore[attr-defined]
            a.send_all(b"for all")  # type: ignore[attr-defined]
            assert receive_exactly(old, 1, timeout=2.0) == [b"for all"]
            assert b.receive_from(2.0) == [("a", b"for all")]  # type: ignore[attr-defined]
            assert c.receive_from(2.0) == []  # type: ignore[attr-defined]
            # a is not c's peer: its broadcast is counted; its unicast for b never came
            assert c.counters.as_dict()["drops"]["unknown_station"] == 1
            old.send(b"bare")
            assert receive_exactly(b, 1, timeout=2.0) == [b"bare"]
            assert old.receive(0.3) == []  # it heard a's unicast for b as nothing
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.connect(("127.0.0.1", port))
                sock.send(b'J{"name": "x", "radio": {"rate": 96000}, "addressed": true}')
                sock.recv(100)
                sock.send(b"F\x09abc")  # an address longer than the frame
            assert query_stats(("127.0.0.1", port))["malformed"] == 1
        finally:
            for link in (*links.values(), old):
                link.close()


def test_a_topology_hides_stations_and_refuses_one_it_does_not_name(tmp_path: Path) -> None:
    """Line A - B - C on the medium: A's frame for all reaches B, not C; C's reaches B, not
    A; a station D the topology does not name cannot join."""
    topology = tmp_path / "line"
    topology.write_text("A B\nB C\n")
    port = free_port()
    with medium_process(port, "--topology", str(topology)):
        links = {name: station(port, station=name) for name in "ABC"}
        try:
            for link in links.values():
                link.set_stations(["A", "B", "C"])  # type: ignore[attr-defined]
            links["A"].send_all(b"from A")  # type: ignore[attr-defined]
            assert links["B"].receive_from(2.0) == [("A", b"from A")]  # type: ignore[attr-defined]
            links["C"].send_all(b"from C")  # type: ignore[attr-defined]
            assert links["B"].receive_from(2.0) == [("C", b"from C")]  # type: ignore[attr-defined]
            assert links["C"].receive(0.3) == [] and links["A"].receive(0.3) == []
            with pytest.raises(LinkError, match="not in the medium's topology"):
                station(port, station="D")
        finally:
            for link in links.values():
                link.close()


def test_a_radio_says_when_it_is_ready_from_the_mediums_reports() -> None:
    """a sends two frames (0.17 s each): it holds two, not ready, until the first is on its
    way; b hears a's carrier (not ready) until a's transmission ends; both end ready."""
    port = free_port()
    with medium_process(port):
        a, b = station(port, rate="9600"), station(port, rate="9600")
        try:
            seen: dict[str, list[bool]] = {"a": [], "b": []}
            for name, link in (("a", a), ("b", b)):
                link.on_ready(lambda name=name, link=link: seen[name].append(  # type: ignore[misc]
                    link.ready()))  # type: ignore[attr-defined]
            deadline = time.monotonic() + 5.0
            while not seen["a"] and time.monotonic() < deadline:
                a.receive(0.1)  # the medium's first report, after the join
            assert seen["a"] == [True] and b.ready()  # type: ignore[attr-defined]
            a.send(bytes(200))
            a.send(bytes(200))
            assert not a.ready()  # type: ignore[attr-defined]
            assert receive_exactly(b, 2, timeout=2.0) == [bytes(200)] * 2
            b.receive(0.3)  # a's tail ends: b hears it
            a.receive(0.3)
            assert False in seen["b"] and seen["b"][-1]
            assert True in seen["a"] and seen["a"][-1]
            assert a.ready() and b.ready()  # type: ignore[attr-defined]
        finally:
            a.close()
            b.close()
