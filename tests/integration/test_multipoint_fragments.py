"""Fragmentation per peer (docs/multipoint.md) for real: a hub with peers b and c on a udp:
link of 600 bytes under 1400-byte tunnels, plain and encrypted. b and c ping the hub with
1200-byte packets at the same time: each peer's fragments are reassembled in its own stack
at the hub, so every ping is answered, and the hub's peers' fragment layers count no drop."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from linkbridge.lab.probes import PingResult, ping
from linkbridge.lab.processes import LinkbridgeProcess, running_together
from linkbridge.lab.topology import Star
from tests.integration.test_multipoint import statuses
from tests.integration.test_roaming import NAMES, PORT, make_keys, overlay, three_hosts

LINK_MTU, TUNNEL_MTU, PING_SIZE, COUNT = 600, 1400, 1200, 20


def args_of(star: Star, index: int, keys: list[tuple[Path, str]] | None) -> list[str]:
    """The hub (0) with b and c as peers, b and c with the hub: all on a narrow link."""
    args = ["up", "--name", "lbf0", "--mtu", str(TUNNEL_MTU),
            "--link", f"udp:?bind={star.address(index)}:{PORT}&mtu={LINK_MTU}",
            "--address", f"{overlay(index)}/16"]
    args += ["--private-key", str(keys[index][0])] if keys else []
    for other in ((1, 2) if index == 0 else (0,)):
        key = f",key={keys[other][1]}" if keys else ""
        args += ["--peer", f"{NAMES[other]},allowed=198.19.{other + 1}.0/24,"
                           f"endpoint={star.address(other)}:{PORT}{key}"]
    return args


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_two_peers_send_large_packets_at_once(run_dir: object, root: None, tmp_path: Path,
                                               encrypted: bool) -> None:
    with three_hosts() as star:
        peers_at_once(star, make_keys(tmp_path) if encrypted else None)


def peers_at_once(star: Star, keys: list[tuple[Path, str]] | None) -> None:
    """b and c ping the hub with large packets at once: every ping answered, the hub's peers'
    fragment layers reassembled them without a drop."""
    stations = [LinkbridgeProcess(host, args_of(star, index, keys),
                                  NAMES[index]) for index, host in enumerate(star.hosts)]
    with running_together(*stations):
        for index in (1, 2):  # sessions up, routes learned
            assert ping(star.hosts[index], overlay(0), count=1).received == 1
        results: dict[int, PingResult] = {}

        def pinger(index: int) -> threading.Thread:
            return threading.Thread(target=lambda: results.__setitem__(index, ping(
                star.hosts[index], overlay(0), count=COUNT, interval=0.005, size=PING_SIZE)))

        threads = [pinger(1), pinger(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        hub = statuses(stations[:1])[0]
    assert [results[index].received for index in (1, 2)] == [COUNT, COUNT], results
    for name in ("b", "c"):
        layers = list(dict(hub.peers)[name].stack())
        assert len(layers) == 2 + bool(keys), layers  # (encrypt,) fragment, the port
        assert all(layer.encryption for layer in layers[:-2])
        fragment, port = layers[-2:]  # fragments came in, whole packets went up
        assert port.rx_packets > fragment.rx_packets >= COUNT, layers
        assert not any(layer.drops for layer in layers), layers
