"""`benchmarks before-after`'s table: each row checked in the direction that is worse for it,
5% allowed, the control's ratio shown, a miss in the exit status."""

from __future__ import annotations

import re

from benchmarks.base_tree import Installed
from benchmarks.before_after import table
from benchmarks.compare import Sample
from benchmarks.running import verdict_status

TREES = {"before": Installed(("old",), "d0ad6da"), "after": Installed(("new",), "abc1234")}


def sample(tcp: float, rtt: float, rss: float, loss: float = 1.0) -> Sample:
    return Sample(tcp_mbit=tcp, rtt_avg_ms=rtt, rtt_p99_ms=2 * rtt, pps=50e3,
                  loss_percent=loss, cpu_s_per_gb=10.0, rss_mb=rss)


def rows_of(lines: list[str]) -> dict[tuple[str, str], list[str]]:
    """The table's rows by (figure, variant): their cells (columns are 2+ spaces apart)."""
    return {(cells[0], cells[1]): cells for line in lines[1:]
            if len(cells := re.split(r"\s{2,}", line)) > 2}


def test_each_row_is_checked_in_its_worse_direction_with_the_control_beside() -> None:
    socat = [sample(600, 0.2, 5.0)]
    lines = table({"before": {"socat": socat,
                              "linkbridge": [sample(700, 0.30, 50.0, loss=1.0)]},
                   "after": {"socat": socat,
                             "linkbridge": [sample(690, 0.33, 50.0, loss=9.0)]}}, TREES)
    assert lines[0].split()[:6] == ["figure", "variant", "before", "(d0ad6da)", "after",
                                    "(abc1234)"]
    rows = {figure: cells[2:] for (figure, _variant), cells in rows_of(lines).items()}
    # before, after, after/before, socat's after/before, worse if, verdict
    assert rows["TCP Mbit/s"] == ["700", "690", "0.99", "1.00", "lower", "ok"]
    assert rows["ping RTT avg ms"][2:] == ["1.10", "1.00", "higher", "MISSED (10.0% worse)"]
    assert rows["64 B UDP loss %"][2:] == ["9.00", "1.00", "not checked"]
    assert rows["RSS MB (max side)"][2:] == ["1.00", "1.00", "higher", "ok"]
    assert rows["TCP IPv6 Mbit/s"] == ["-", "-", "-", "-", "lower"]
    assert lines[-2].startswith("control: socat's after/before 1.00..1.00 (within 5%")
    assert lines[-1].endswith("MISSED (2 rows)")  # RTT avg and p99
    assert verdict_status(lines) == 1


def test_a_tree_as_good_or_better_passes_and_rss_counts_growth_as_worse() -> None:
    before = {"socat": [sample(600, 0.2, 5.0)], "offload": [sample(2000, 0.3, 50.0)]}
    better = {"socat": [sample(640, 0.2, 5.0)], "offload": [sample(2100, 0.29, 52.0)]}
    lines = table({"before": before, "after": better}, TREES)
    assert verdict_status(lines) == 0 and lines[-1].endswith("ok")
    assert "1.07" in lines[-2]  # socat's TCP moved 7%: the control says the halves differed
    assert "beyond 5%" in lines[-2]
    heavier = {**better, "offload": [sample(2100, 0.29, 53.0)]}
    rss = rows_of(table({"before": before, "after": heavier}, TREES))[
        ("RSS MB (max side)", "offload")]
    assert rss[4:] == ["1.06", "1.00", "higher", "MISSED (6.0% worse)"]
