"""Fixtures shared by every test tier: root/kernel feature checks and lab hosts that clean up."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from linkbridge.lab.topology import TwoHosts, two_hosts
from linkbridge.ops.status import RUN_DIR_ENV
from linkbridge.plugin.conformance import LinkConformance
from linkbridge.plugin.registry import LinkRegistry, get_plugin_manager
from tests.helpers import tier_gate, vm_session, zygote


def missing_privileges() -> str | None:
    """Why integration tests on real kernel objects cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, veth, TUN devices)"
    if not os.path.exists("/dev/net/tun"):
        return "needs /dev/net/tun (the kernel's tun module)"
    return None


@pytest.fixture
def root() -> None:
    """Skip with the reason when this test cannot create namespaces and TUN devices."""
    reason = missing_privileges()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def lab(root: None) -> Iterator[TwoHosts]:
    """Two hosts in fresh network namespaces joined by veth; removed even when the test fails."""
    with two_hosts() as hosts:
        yield hosts


@pytest.fixture(scope="session", autouse=True)
def tunnel_launcher() -> Iterator[None]:
    """The lab's tunnel processes forked from one pre-imported linkbridge (a new interpreter
    spends ~0.4 s of CPU on imports; tests/helpers/zygote.py); LINKBRIDGE_TEST_FRESH=1 starts
    each in a new interpreter instead."""
    if os.environ.get(zygote.FRESH_ENV):
        yield
        return
    zygote.install()
    try:
        yield
    finally:
        zygote.uninstall()


@pytest.fixture(scope="session")
def registry() -> LinkRegistry:
    """The installed plugins' link registry, built once for the run (lab_tunnels needs it)."""
    return LinkRegistry(get_plugin_manager())


@pytest.fixture
def run_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A status directory of this test's own (short path: unix socket names are limited),
    reachable by an unprivileged `--user` so it can remove its socket on exit."""
    top = Path(tempfile.mkdtemp(prefix="lbst-"))
    os.chmod(top, 0o755)
    monkeypatch.setenv(RUN_DIR_ENV, str(top / "run"))
    yield top / "run"
    shutil.rmtree(top, ignore_errors=True)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true",
                     help="run the long variants of the reliability tests (soak, load, fuzz)")


def pytest_configure(config: pytest.Config) -> None:
    """No per-example deadline (CI machines are noisy); --long makes every property test a
    long fuzz run, `--hypothesis-profile quick` (the quick loop) a short one."""
    relaxed = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("ci", relaxed)
    settings.register_profile("long", relaxed, max_examples=20_000)
    settings.register_profile("quick", relaxed, max_examples=25)  # ./run.sh test --quick
    chosen = config.getoption("hypothesis_profile", None)
    settings.load_profile("long" if config.getoption("--long") else chosen or "ci")
    tier_gate.register(config)  # per-tier summary; under CI, unlisted skips fail the run


@pytest.fixture
def signal_handlers() -> Iterator[None]:
    """SIGINT/SIGTERM handlers as they were before the test, put back after it
    (ops.signals.shutdown_on_signals leaves them ignored once one has fired)."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.fixture
def long_run(request: pytest.FixtureRequest) -> bool:
    """True when the long variants were asked for with --long."""
    return bool(request.config.getoption("--long"))


# The conformance suite's checks that do no I/O (linkbridge/plugin/conformance.py): with the unit
# tier they make the quick loop, `./run.sh test --quick` (`-m quick`)
PURE_CONFORMANCE = ("test_registered_with_summary_and_options",)


# The order in which the tiers' files are handed to the workers (`./run.sh test` runs pytest-xdist
# with --dist loadfile --no-loadscope-reorder): the reliability tier's long files first (a
# 60-second flood handed out last was the run's tail), then the integration tier, then tests/vm
# (by then the VM has about finished; its host side takes ~20 s), and the unit tier's short files
# last, to fill the workers' last minute (they did not cover tests/vm's host side at the end).
TIER_ORDER = ("reliability", "integration", "other", "vm", "unit")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order the tests by TIER_ORDER (in collection order within a tier), and mark the quick
    loop's tests `quick`: the unit tier and the pure conformance checks."""
    items.sort(key=lambda item: TIER_ORDER.index(tier_gate.tier_of(item.nodeid)))
    for item in items:
        is_unit = tier_gate.tier_of(item.nodeid) == "unit"
        if is_unit or (isinstance(item, pytest.Function) and item.cls is not None
                       and issubclass(item.cls, LinkConformance)
                       and item.originalname in PURE_CONFORMANCE):
            item.add_marker(pytest.mark.quick)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Boot the test VM now, in the background, when VM tests are to run (tests/vm); under
    pytest-xdist the controller boots it instead (the two hooks below)."""
    vm_session.start_if_needed(session)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist controller: tell each worker where the VM's results will be."""
    vm_session.hand_to_worker(node.config, node.workerinput)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """pytest-xdist controller: boot the VM once, as soon as a worker has collected VM tests."""
    vm_session.start_for_workers(node.config, ids)


def pytest_unconfigure(config: pytest.Config) -> None:
    vm_session.finish(config)
