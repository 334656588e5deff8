"""A status document as a tunnel serves it, parsed into typed form: every layer's figures, the
defaults for what an older process did not send, and a one-line error for a wrong type."""

from __future__ import annotations

import json
from typing import Any

import pytest

from linkbridge.datapath.counters import Counters
from linkbridge.ops import status
from linkbridge.ops.status_data import (
    CompressDirection,
    LinkLiveness,
    SideStatus,
    TunnelStatus,
    parse_tunnel,
)


def counters(name: str, rx: int, **more: object) -> dict[str, object]:
    counted = Counters(rx_packets=rx, rx_bytes=rx * 100)
    counted.drop("crc", 2)
    counted.segmented_send(4)
    return {"name": name, **counted.as_dict(), **more}


def served() -> dict[str, Any]:
    """A document as `up` serves it: the device side, and compress over encrypt over a link."""
    encryption = {"state": "established", "handshakes": 2, "last_handshake": 1000.5,
                  "session_age_s": 3.0, "handshake_s": 0.01, "cipher": "chacha20-poly1305",
                  "public_key": "k="}
    compress = {"mode": "auto", "tx": {"packets": 9, "compressed": 6, "full": 1, "saved": 300,
                                       "feedback": 0},
                "rx": {"packets": 4, "compressed": 2, "full": 1, "saved": 50, "feedback": 1}}
    link_side = counters("auto+encrypt+udp", 9, compress=compress,
                         frames=counters("encrypt+udp", 9, encryption=encryption,
                                         frames=counters("udp", 11)))
    document = {"device": "lb0", "pid": 42, "uid": 1000, "link": "udp:198.18.0.2:5555",
                "mtu": 1400, "addresses": ["10.0.0.1/24"], "routes": ["10.9.0.0/16"],
                "started": 1700000000.123, "uptime_s": 12.5, "tunnel": counters("lb0", 3),
                "link_side": link_side, "link_state": "up", "link_state_for_s": 10.0,
                "last_frame_s": None, "keepalive_s": 5, "keepalives_sent": 2,
                "config": None, "config_key": "lb0"}
    parsed: dict[str, Any] = json.loads(json.dumps(document))  # as it comes off the socket
    return parsed


def test_every_layer_of_a_served_document_is_typed() -> None:
    document = served()
    tunnel = parse_tunnel(document)
    assert (tunnel.device, tunnel.pid, tunnel.uid, tunnel.mtu) == ("lb0", 42, 1000, 1400)
    assert tunnel.routes == ("10.9.0.0/16",) and tunnel.started == 1700000000.123
    assert tunnel.tunnel.rx_bytes == 300 and tunnel.tunnel.drops == {"crc": 2}
    assert tunnel.tunnel.offload == {"gso_packets": 4, "gso_sends": 1}
    assert [side.name for side in tunnel.link_side.stack()] == [
        "auto+encrypt+udp", "encrypt+udp", "udp"]
    compression = tunnel.link_side.compression
    assert compression is not None and compression.mode == "auto"
    assert compression.rx == CompressDirection(4, 2, 1, 50, 1)
    below = tunnel.link_side.below
    assert below is not None and below.encryption is not None
    assert below.encryption.cipher == "chacha20-poly1305"
    assert below.encryption.last_handshake == 1000.5
    assert tunnel.liveness == LinkLiveness("up", 10.0, None, 5.0, 2)
    assert [label for label, _ in tunnel.sides()] == ["tunnel", "link"]
    assert tunnel.document is document


def test_an_older_process_leaves_keys_out() -> None:
    tunnel = parse_tunnel({"device": "lb3", "pid": 3, "uptime_s": 61,
                           "tunnel": {"rx_packets": 1}})
    assert tunnel == TunnelStatus(device="lb3", pid=3, uptime_s=61.0,
                                  tunnel=SideStatus(rx_packets=1))
    assert tunnel.liveness is None and tunnel.link_side.below is None
    assert parse_tunnel({}) == TunnelStatus()


@pytest.mark.parametrize(("document", "message"), [
    ([], "status document: expected an object, not list"),
    ({"pid": "42"}, "pid: expected a whole number, not '42'"),
    ({"pid": True}, "pid: expected a whole number, not True"),
    ({"uptime_s": "1"}, "uptime_s: expected a number"),
    ({"routes": "10.0.0.0/8"}, "routes: expected a list of strings"),
    ({"link_side": {"frames": 3}}, "link_side.frames: expected an object, not int"),
    ({"link_side": {"drops": {"crc": 1.5}}}, "crc: expected a whole number"),
    ({"tunnel": {"compress": {"tx": []}}}, "tunnel.compress.tx: expected an object"),
])
def test_a_value_of_the_wrong_type_is_named(document: object, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}"):
        parse_tunnel(document)


def test_a_document_that_does_not_parse_is_logged_and_skipped(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(status, "collect", lambda base=None: [served(), {"pid": 9, "mtu": "x"}])
    [tunnel] = status.collect_status()
    assert tunnel.pid == 42
    assert "status of pid 9: unreadable document: mtu: expected a whole number" in caplog.text
