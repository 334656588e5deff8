"""Tiers never vanish silently: a per-tier run/skipped/failed summary, and under CI a failure
when an integration, reliability or VM test skipped without being listed as an expected skip.

A pytest plugin (tests/conftest.py imports its hooks; `pytest -p tests.helpers.tier_gate` loads
it elsewhere). Expected skips are listed in tests/expected_skips.txt (or the file named by
$LINKBRIDGE_EXPECTED_SKIPS), one per line: `NODEID_OR_PREFIX | reason`. The VM tier may not be
listed: when it cannot run, CI fails.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TIERS = ("unit", "integration", "reliability", "vm")
GATED = ("integration", "reliability", "vm")  # under CI these may not skip unless listed
NEVER_LISTED = ("vm",)
EXPECTED_SKIPS_ENV = "LINKBRIDGE_EXPECTED_SKIPS"
DEFAULT_EXPECTED = Path(__file__).resolve().parent.parent / "expected_skips.txt"


def under_ci() -> bool:
    """True when $CI says this is a CI run (`CI=true`, as CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def load_expected(path: Path) -> dict[str, str]:
    """The expected skips file: node id (or prefix) -> reason. A VM entry or a line without a
    reason is refused (a UsageError names the line)."""
    expected: dict[str, str] = {}
    if not path.exists():
        return expected
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        nodeid, _bar, reason = (part.strip() for part in line.partition("|"))
        if not nodeid or not reason:
            raise pytest.UsageError(f"{path}:{number}: expected `NODEID | reason`, got {line!r}")
        if tier_of(nodeid) in NEVER_LISTED:
            raise pytest.UsageError(f"{path}:{number}: the VM tier may not skip ({nodeid})")
        expected[nodeid] = reason
    return expected


def tier_of(nodeid: str) -> str:
    """The tier a test belongs to: the first directory of its path named like one."""
    parts = nodeid.split("::")[0].split("/")
    return next((part for part in parts[:-1] if part in TIERS), "other")


@dataclass
class Outcomes:
    """Each test's final outcome, by node id (failed beats skipped beats passed)."""

    outcome: dict[str, str] = field(default_factory=dict)
    skip_reason: dict[str, str] = field(default_factory=dict)

    def record(self, report: pytest.TestReport) -> None:
        if hasattr(report, "wasxfail"):
            result = "passed"
        elif report.failed:
            result = "failed"
        elif report.skipped:
            result = "skipped"
            longrepr = report.longrepr
            if isinstance(longrepr, tuple):
                self.skip_reason[report.nodeid] = str(longrepr[2]).removeprefix("Skipped: ")
        elif report.when == "call":
            result = "passed"
        else:
            result = self.outcome.get(report.nodeid, "passed")
        previous = self.outcome.get(report.nodeid)
        if previous == "failed" or (previous == "skipped" and result == "passed"):
            return
        self.outcome[report.nodeid] = result

    def counts(self) -> dict[str, dict[str, int]]:
        table = {tier: {"passed": 0, "skipped": 0, "failed": 0} for tier in (*TIERS, "other")}
        for nodeid, result in self.outcome.items():
            table[tier_of(nodeid)][result] += 1
        return table


class TierGate:
    """The plugin object: records outcomes, fails a CI session on unexpected skips, summarises."""

    def __init__(self, expected: dict[str, str], ci: bool) -> None:
        self.expected, self.ci = expected, ci
        self.results = Outcomes()

    def listed(self, nodeid: str) -> str | None:
        return next((reason for prefix, reason in self.expected.items()
                     if nodeid == prefix or nodeid.startswith(prefix)), None)

    def unexpected_skips(self) -> list[str]:
        return [nodeid for nodeid, result in self.results.outcome.items()
                if result == "skipped" and tier_of(nodeid) in GATED and not self.listed(nodeid)]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.results.record(report)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.ci and self.unexpected_skips() and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def summary(self) -> list[str]:
        lines = []
        for tier, count in self.results.counts().items():
            if tier == "other" and not any(count.values()):
                continue
            lines.append(f"tier {tier}: {count['passed'] + count['failed']} run, "
                         f"{count['skipped']} skipped, {count['failed']} failed")
        for nodeid, result in self.results.outcome.items():
            reason = self.listed(nodeid)
            if result == "skipped" and reason:
                lines.append(f"expected skip: {nodeid}: {reason}")
        unexpected = self.unexpected_skips()
        for nodeid in unexpected:
            lines.append(f"{'CI: not allowed to skip' if self.ci else 'skipped'}: {nodeid}: "
                         f"{self.results.skip_reason.get(nodeid, '')}")
        if unexpected and self.ci:
            lines.append(f"CI: FAILED, {len(unexpected)} integration/reliability/VM test(s) "
                         "skipped that are not in the expected skips file")
        return lines

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """After pytest's own final line: the per-tier lines end the output."""
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None or not self.results.outcome:
            return
        for line in self.summary():
            reporter.write_line(line)


def register(config: pytest.Config) -> None:
    """Register the gate once (tests/conftest.py calls this; `-p` loading runs the hook below)."""
    if config.pluginmanager.has_plugin("linkbridge-tier-gate"):
        return
    path = Path(os.environ.get(EXPECTED_SKIPS_ENV) or DEFAULT_EXPECTED)
    config.pluginmanager.register(TierGate(load_expected(path), under_ci()), "linkbridge-tier-gate")


def pytest_configure(config: pytest.Config) -> None:
    register(config)
