"""Per-peer life of a multipoint tunnel (docs/multipoint.md) for real: a hub `a` in a namespace
with stations b, c (and d) each in its own, over one udp: socket, encrypted per peer.

- Each peer's liveness and hooks: with keepalives, b and c come up at a (on-peer-up with
  the peer's name and endpoint), d (never started) stays down; c stops, and while its address
  floods a with garbage and a keeps sending to c's and d's prefixes (d's session waits for a
  handshake that never comes), a and b exchange pings with no loss; c goes down at a
  (on-peer-down) while b, idle but for keepalives, stays up.
- Reload: a runs from a config file; while a pings b in a stream, the file drops c and adds d,
  SIGHUP: not one of b's pings is lost, c's route and state are gone, d answers.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pyroute2 import IPRoute

from linkbridge.lab import netns
from linkbridge.lab.probes import ping
from linkbridge.lab.processes import LinkbridgeProcess, running_together
from linkbridge.lab.topology import Star, set_sysctl, star_hosts
from linkbridge.ops.status import collect_status
from linkbridge.ops.status_data import PEER_SIDE, TunnelStatus
from tests.helpers.ping_stream import ping_stream
from tests.helpers.station_keys import station_keys

PORT = 47410
DEVICE = "lbp0"
NAMES = "abcd"
KEEPALIVE = "0.3"


def overlay(index: int) -> str:
    """Station N's tunnel address; it owns 198.19.N+1.0/24."""
    return f"198.19.{index + 1}.1"


@pytest.fixture
def star(root: None) -> Iterator[Star]:
    with star_hosts(len(NAMES)) as hosts:
        for host in hosts.hosts:
            set_sysctl(host, "net/ipv6/conf/default/disable_ipv6", "1")
        yield hosts


@pytest.fixture
def keys(tmp_path: Path) -> list[tuple[str, str]]:
    """Each station's private key file and public key."""
    return station_keys(tmp_path, NAMES)


def peer(star: Star, keys: list[tuple[str, str]], index: int) -> str:
    return (f"{NAMES[index]},allowed=198.19.{index + 1}.0/24,"
            f"endpoint={star.address(index)}:{PORT},key={keys[index][1]}")


def station(star: Star, keys: list[tuple[str, str]], index: int) -> LinkbridgeProcess:
    """Station `index` (b, c, d) with the hub a as its one peer, keepalives on."""
    return LinkbridgeProcess(star.hosts[index], [
        "up", "--name", DEVICE, "--link", f"udp:?bind={star.address(index)}:{PORT}",
        "--address", f"{overlay(index)}/16", "--private-key", keys[index][0],
        "--keepalive", KEEPALIVE, "--peer", peer(star, keys, 0)], f"station {NAMES[index]}")


def hub_status(hub: LinkbridgeProcess) -> TunnelStatus:
    assert hub.proc is not None
    return next(tunnel for tunnel in collect_status() if tunnel.pid == hub.proc.pid)


def peer_states(hub: LinkbridgeProcess) -> dict[str, str]:
    states = hub_status(hub).link_states
    return {label.removeprefix(PEER_SIDE): state for label, state in states.items()
            if label.startswith(PEER_SIDE)}


def until(done: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def flood(host: str, source: tuple[str, int], target: tuple[str, int], stop: threading.Event
          ) -> int:
    """Garbage datagrams from `source` (a peer's station) to `target` until `stop`; how many."""
    with netns.inside(host):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = 0
    with sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(source)
        while not stop.is_set():
            for size in (1, 32, 148, 1200):  # a data frame's, a handshake's and odd sizes
                sock.sendto(os.urandom(size), target)
                sent += 1
            time.sleep(0.001)
    return sent


def test_each_peer_lives_on_its_own(run_dir: object, star: Star, keys: list[tuple[str, str]],
                                    tmp_path: Path) -> None:
    events = tmp_path / "events"
    hook = f'echo "$LINKBRIDGE_EVENT $LINKBRIDGE_PEER $LINKBRIDGE_PEER_ENDPOINT" >> {events}'
    hub = LinkbridgeProcess(star.hosts[0], [
        "up", "--name", DEVICE, "--link", f"udp:?bind={star.address(0)}:{PORT}",
        "--address", f"{overlay(0)}/16", "--private-key", keys[0][0], "--keepalive", KEEPALIVE,
        "--on-peer-up", hook, "--on-peer-down", hook,
        "--peer", peer(star, keys, 1), "--peer", peer(star, keys, 2),
        "--peer", peer(star, keys, 3)], "hub a")  # d never runs: its handshakes never end
    b, c = station(star, keys, 1), station(star, keys, 2)
    with running_together(hub, b, c):
        until(lambda: peer_states(hub) == {"b": "up", "c": "up", "d": "down"}, 10,
              "b and c up at a")
        until(lambda: events.exists() and len(events.read_text().splitlines()) == 2, 5,
              "the peer-up hooks")
        assert sorted(events.read_text().splitlines()) == [
            f"peer-up b {star.address(1)}:{PORT}", f"peer-up c {star.address(2)}:{PORT}"]
        c.stop()
        stop = threading.Event()
        garbage: list[int] = []
        hostile = threading.Thread(target=lambda: garbage.append(flood(
            star.hosts[2], (star.address(2), PORT), (star.address(0), PORT), stop)))
        hostile.start()
        try:
            with netns.inside(star.hosts[0]):
                to_c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            with to_c, ping_stream(star.hosts[0], overlay(1), count=200, interval=0.01
                                   ) as result:
                for _ in range(150):  # a keeps sending to the silent c and d, 1000/s each
                    for _ in range(10):
                        to_c.sendto(b"x" * 64, ("198.19.3.9", 9))
                        to_c.sendto(b"x" * 64, ("198.19.4.9", 9))
                    time.sleep(0.01)
            until(lambda: peer_states(hub).get("c") == "down", 10, "c down at a")
        finally:
            stop.set()
            hostile.join()
        time.sleep(1.0)  # a and b idle: their keepalives keep b up
        states = peer_states(hub)
        lines = events.read_text().splitlines()
        c_side = dict(hub_status(hub).peers)["c"]
    assert result[0].sent == 200 and result[0].received == 200, result[0]
    assert states == {"b": "up", "c": "down", "d": "down"}, states
    assert lines[2:] == [f"peer-down c {star.address(2)}:{PORT}"], lines
    encrypt = next(layer for layer in c_side.stack() if layer.encryption)
    assert garbage[0] > 500 and sum(encrypt.drops.values()) > 0, (garbage, encrypt.drops)


def routes(host: str) -> set[str]:
    with netns.inside(host), IPRoute() as ipr:
        return {f"{route.get_attr('RTA_DST')}/{route['dst_len']}"
                for route in ipr.get_routes(family=socket.AF_INET) if route.get_attr("RTA_DST")}


def hub_file(star: Star, keys: list[tuple[str, str]], path: Path, peers: tuple[int, ...]) -> None:
    lines = [f'name = "{DEVICE}"', f'link = "udp:?bind={star.address(0)}:{PORT}"',
             f'address = "{overlay(0)}/16"', f'private-key = "{keys[0][0]}"']
    lines.append("peer = [" + ", ".join(f'"{peer(star, keys, index)}"' for index in peers) + "]")
    path.write_text("\n".join(lines) + "\n")


def test_reload_adds_and_removes_peers_while_the_others_stream(
        run_dir: object, star: Star, keys: list[tuple[str, str]], tmp_path: Path) -> None:
    config = tmp_path / "a.toml"
    hub_file(star, keys, config, (1, 2))
    hub = LinkbridgeProcess(star.hosts[0], ["up", "-c", str(config)], "hub a")
    stations = [station(star, keys, index) for index in (1, 2, 3)]
    with running_together(hub, *stations):
        assert ping(star.hosts[0], overlay(1), count=2, interval=0.01).received == 2
        assert ping(star.hosts[0], overlay(2), count=2, interval=0.01).received == 2
        assert "198.19.3.0/24" in routes(star.hosts[0])
        with ping_stream(star.hosts[0], overlay(1), count=300, interval=0.01) as result:
            time.sleep(0.5)
            hub_file(star, keys, config, (1, 3))  # c goes, d comes
            assert hub.proc is not None
            os.kill(hub.proc.pid, signal.SIGHUP)
            until(lambda: "peers changed by reload" in hub.output(), 5, "the reload")
            to_d = ping(star.hosts[0], overlay(3), count=3, interval=0.01)
        after = routes(star.hosts[0])
        side = hub_status(hub)
        gone = ping(star.hosts[0], overlay(2), count=1, timeout=0.3)
        log = hub.output()
    assert result[0].sent == 300 and result[0].received == 300, result[0]  # not one lost
    assert to_d.received == 3, to_d
    assert gone.received == 0
    assert "198.19.4.0/24" in after and "198.19.3.0/24" not in after, after
    assert [name for name, _side in side.peers] == ["b", "d"]
    assert dict(side.peers)["b"].rx_packets >= 300  # b's counters went on: not restarted
    assert "peers changed by reload: d added, c removed" in log, log
    assert "reload: 0 added, 0 removed, 0 changed, 1 with new peers, 0 unchanged" in log, log
