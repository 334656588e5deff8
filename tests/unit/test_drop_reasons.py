"""Drop reasons declared by plugins (Link.drop_reasons) and shown with their descriptions:
the registry's table, `links`, and the `reasons` map and legend of `status`."""

from __future__ import annotations

from typing import Any

from linkbridge.framing import crc16, kiss, slip
from linkbridge.ops.reasons import UNDECLARED, counted_reasons, describe_reasons, legend_lines
from linkbridge.ops.status_data import parse_tunnel
from linkbridge.ops.status_format import format_table
from linkbridge.plugin.registry import plugin_registry
from linkbridge.wire import drops

SNAPSHOT: dict[str, Any] = {
    "device": "lb0", "pid": 7, "uptime_s": 3,
    "tunnel": {"name": "tun lb0", "drops": {}},
    "link_side": {"name": "vj+serial:/dev/ttyS0", "drops": {"compress_tossed": 2},
                  "frames": {"drops": {"crc": 1, "serial_hiccup": 4}}},
}


def test_reasons_are_found_at_any_depth_and_described_or_marked_undeclared() -> None:
    assert counted_reasons(SNAPSHOT) == {"compress_tossed", "crc", "serial_hiccup"}
    known = {**drops.REASONS, **crc16.REASONS}
    assert describe_reasons(SNAPSHOT, known) == {
        "compress_tossed": drops.REASONS[drops.COMPRESS_TOSSED],
        "crc": crc16.REASONS[crc16.CRC],
        "serial_hiccup": UNDECLARED,  # still counted and shown, as undeclared
    }


def test_the_status_table_ends_with_a_legend_of_the_reasons_it_shows() -> None:
    document = {**SNAPSHOT, "reasons": describe_reasons(SNAPSHOT, drops.REASONS)}
    lines = format_table([parse_tunnel(document)], now=0.0).splitlines()
    legend = lines[lines.index("drop reasons:") + 1:]
    assert [line.split()[0] for line in legend] == ["compress_tossed", "crc", "serial_hiccup"]
    assert legend[0].endswith(drops.REASONS[drops.COMPRESS_TOSSED])
    assert legend[2].endswith(UNDECLARED)
    assert legend_lines([{}]) == []  # nothing counted: no legend


def test_the_registry_knows_every_declared_reason_and_links_show_their_own() -> None:
    registry = plugin_registry()
    reasons = registry.drop_reasons()
    assert {**drops.REASONS, **slip.REASONS, **crc16.REASONS, **kiss.REASONS}.items() \
        <= reasons.items()
    assert "sim_loss" in reasons and "ax25_not_for_us" in reasons
    rows = {(row["scheme"], row["kind"]): row for row in registry.describe()}
    assert rows[("serial", "link")]["drop_reasons"] == {**slip.REASONS, **crc16.REASONS}
    assert list(rows[("udp", "link")]["drop_reasons"]) == ["unknown_station"]  # multipoint
    assert "sim_queue_full" in rows[("sim", "wrapper")]["drop_reasons"]
