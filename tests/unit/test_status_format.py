"""What `linkbridge status` prints, from typed status data: the table, its compression and
encryption lines, and the JSON (the documents as served)."""

from __future__ import annotations

import json

from linkbridge.ops.status_data import (
    CompressDirection,
    Compression,
    Encryption,
    LinkLiveness,
    SideStatus,
    TunnelStatus,
)
from linkbridge.ops.status_format import (
    drops_text,
    encryption_lines,
    format_json,
    format_table,
    human_bytes,
    human_duration,
)

ESTABLISHED = Encryption("established", "aes-256-gcm", handshakes=3, last_handshake=1000.0)


def encrypted(device: str, link_side: SideStatus) -> TunnelStatus:
    return TunnelStatus(device=device, link_side=link_side)


def test_encryption_line_shows_state_cipher_handshake_and_drops() -> None:
    below_compression = SideStatus("vj+encrypt+udp", below=SideStatus(
        "encrypt+udp", encryption=Encryption("handshaking"), below=SideStatus("udp")))
    tunnels = [encrypted("lbt0", SideStatus(encryption=ESTABLISHED,
                                            drops={"auth": 2, "replay": 1})),
               encrypted("lbt1", below_compression), encrypted("lbt2", SideStatus())]
    assert encryption_lines(tunnels, now=1012.0) == [
        "lbt0: encryption established (aes-256-gcm), last handshake 12s ago (3 so far), "
        "drops auth=2 replay=1",
        "lbt1: encryption handshaking, no handshake yet",
    ]


def test_table_has_a_row_per_side_then_the_layer_lines() -> None:
    vj = Compression("vj", CompressDirection(packets=10, compressed=7, saved=2048),
                     CompressDirection(packets=5, compressed=4, saved=99))
    link_side = SideStatus("vj+encrypt+serial", 1000, 90_000, 1001, 80_000,
                           drops={"compress_tossed": 4}, compression=vj,
                           below=SideStatus("encrypt+serial", encryption=ESTABLISHED))
    tunnels = [
        TunnelStatus(device="lb0", pid=101, uptime_s=3725.5,
                     tunnel=SideStatus("lb0", 12, 1080, 13, 960, drops={"keepalive": 3}),
                     link_side=SideStatus("udp", 9, 810, 10, 720,
                                          drops={"malformed_not_ip": 2, "mtu": 1}),
                     liveness=LinkLiveness("up")),
        TunnelStatus(device="lb1", pid=55, uptime_s=90061.0, tunnel=SideStatus("lb1"),
                     link_side=link_side),  # no liveness: an older process, or a `link`
    ]
    assert format_table(tunnels, now=1012.0).splitlines() == [
        "DEVICE  PID  UP     SIDE                    STATE  RX PKTS  RX BYTES  TX PKTS  TX BYTES  "
        "DROPS",
        "lb0     101  1h02m  tunnel lb0                     12       1.1 KiB   13       960 B     "
        "keepalive=3",
        "                    link udp                up     9        810 B     10       720 B     "
        "malformed_not_ip=2 mtu=1",
        "lb1     55   1d01h  tunnel lb1                     0        0 B       0        0 B       "
        "-",
        "                    link vj+encrypt+serial  -      1000     87.9 KiB  1001     78.1 KiB  "
        "compress_tossed=4",
        "lb1: compress vj: tx 7/10 compressed, 2.0 KiB of headers saved; rx 4/5 compressed, "
        "99 B of headers saved",
        "lb1: encryption established (aes-256-gcm), last handshake 12s ago (3 so far)",
    ]
    assert format_table([], now=0.0) == "no linkbridge tunnels running"


def test_drops_keep_the_order_served() -> None:
    assert drops_text({"mtu": 1, "crc": 20}) == "mtu=1 crc=20"
    assert drops_text({}) == ""


def test_units() -> None:
    assert [human_bytes(n) for n in (0, 1023, 1024, 5 << 20, 3 << 40)] == [
        "0 B", "1023 B", "1.0 KiB", "5.0 MiB", "3072.0 GiB"]
    assert [human_duration(s) for s in (0, 59.9, 61, 3600, 86400 * 2 + 3600)] == [
        "0s", "59s", "1m01s", "1h00m", "2d01h"]


def test_json_is_the_documents_as_served() -> None:
    served = {"device": "lb0", "pid": 1, "keepalive_s": 5, "from_a_newer_process": [1]}
    assert json.loads(format_json([TunnelStatus(document=served)])) == [served]
    assert format_json([]) == "[]"
