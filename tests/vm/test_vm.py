"""Kernel features this machine may lack, checked in one boot of a stock Debian kernel VM.

The VM runs tests/helpers/vm_guest_checks.py once for the whole session (a boot under TCG
costs ~30-60 s, a Python start inside ~30 s); each test here asserts on one check's recorded
result and prints its figures. Skips with the reason where no VM can be started (no root, qemu,
kernel image or virtme-ng).
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from typing import Any

import pytest

from linkbridge.lab.vm import vm_problem
from tests.helpers import vm_session
from tests.helpers.distributions import (
    QUANTILES,
    Z,
    batch_standard_error,
    ks_critical,
    ks_distance,
    proportions_agree,
    quantile,
    quantiles_agree,
    runs,
)
from tests.helpers.vm_guest_checks import CHECKS
from tests.helpers.vm_netem import CASES as NETEM_CASES
from tests.helpers.vm_netem import FLOOR, FLOOR_DELAY_MS, Case, measure, through_sim

pytestmark = pytest.mark.vm
SIM_SEED = 20260101
BACKGROUND = 3  # packets other than the test's that netem may drop during one case


@pytest.fixture(scope="session")
def vm_results(request: pytest.FixtureRequest) -> dict[str, dict[str, Any]]:
    """Every guest check's result by name, from the one boot started in the background at
    collection (tests/helpers/vm_session.py). $LINKBRIDGE_VM_RESULTS=FILE asserts on an earlier
    run's results instead (not under CI)."""
    earlier = vm_session.earlier_results()
    if earlier is not None:
        return {result["name"]: result for result in json.loads(earlier.read_text())}
    reason = vm_problem()
    if reason:
        pytest.skip(reason)
    boot = vm_session.boot_of(request.config)
    assert boot is not None, "the VM boot starts at collection when VM tests are collected"
    run = boot.wait()
    if not boot.results.exists():
        ended = "timed out" if run.returncode is None else f"exited {run.returncode}"
        pytest.fail(f"the VM run {ended} after {run.seconds:.0f} s without results:\n"
                    f"{run.output[-4000:]}")
    print(f"VM run: {run.seconds:.0f} s (in the background while the other tiers ran)")
    return {result["name"]: result for result in json.loads(boot.results.read_text())}


@pytest.mark.parametrize("name", list(CHECKS))
def test_in_vm(vm_results: dict[str, dict[str, Any]], name: str) -> None:
    result = vm_results[name]
    print(f"{name} ({result['seconds']} s): {json.dumps(result['figures'])}")
    if result.get("skipped"):
        pytest.skip(result["detail"])
    assert result["ok"], result["detail"]


def spread_ms(delays_ms: list[float]) -> float:
    """A timing floor: how far unimpaired one-way delays spread (p99 - p1)."""
    ordered = sorted(delays_ms)
    return quantile(ordered, 0.99) - quantile(ordered, 0.01)


@pytest.fixture(scope="session")
def netem_records(vm_results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    run = vm_results["netem"]
    assert run["ok"], run["detail"]
    figures: dict[str, Any] = run["figures"]
    return figures


@pytest.fixture(scope="session")
def host_floor() -> list[float]:
    """Unimpaired one-way delays through a sim: link pair on this machine, now."""
    delays: list[float] = measure(FLOOR, through_sim(FLOOR, SIM_SEED))["delays_ms"]
    return delays


def floor_beside(record: dict[str, Any]) -> list[float]:
    """The one-way delays of the floor a delay case carried beside it in the VM (all of them
    arrived: netem's fixed delay loses nothing), or [] where it carried none."""
    if "floor_sent" not in record:
        return []
    floor = dataclasses.replace(FLOOR, packets=record["floor_sent"])
    figures = measure(floor, {"arrivals": record["floor_arrivals"]})
    assert figures["distinct"] == floor.packets, figures["distinct"]
    delays: list[float] = figures["delays_ms"]
    return delays


@pytest.mark.parametrize("name", list(NETEM_CASES))
def test_sim_agrees_with_netem(netem_records: dict[str, Any], host_floor: list[float],
                               name: str) -> None:
    """The same traffic through a sim: link and through tc netem in the VM: the distribution
    of what each case is about agrees within bounds derived from the sample sizes and from the
    timing floors measured in the same runs (docs/sim.md, "Agreement with netem")."""
    case = NETEM_CASES[name]
    record = netem_records[name]
    netem = measure(case, record)
    sim_record = through_sim(case, SIM_SEED + list(NETEM_CASES).index(name))
    sim = measure(case, sim_record)
    vm_floor = floor_beside(record) or measure(FLOOR, netem_records["floor"])["delays_ms"]
    slack = spread_ms(vm_floor) + spread_ms(host_floor)
    print(f"{name}: tc qdisc ... netem {' '.join(record['netem'])} ({record['seconds']} s "
          f"in the VM); timing slack {slack:.3f} ms"
          + (" (the VM's floor sent beside the case)" if "floor_sent" in record else ""))
    # only the impairment loses packets: netem's drop counter / the sim's loss counter
    # account for every datagram that did not arrive (netem also drops the odd background
    # packet that crosses the veth meanwhile: IPv6 neighbour discovery, ARP)
    if case.measures != "corrupt":  # (corrupted datagrams are dropped by IP and UDP)
        missing = netem["sent"] - netem["distinct"]
        assert missing <= record["netem_dropped"] <= missing + BACKGROUND, record["netem_dropped"]
        assert sim["sent"] - sim["distinct"] == sim_record["sim_loss"], sim_record
    COMPARE[case.measures](case, netem, sim, slack, vm_floor, host_floor)


def compare_loss(case: Case, netem: dict[str, Any], sim: dict[str, Any], *_: Any) -> None:
    """Loss rate (batch-means standard errors: losses come in bursts) and the distribution of
    loss-burst lengths (two-sample KS)."""
    rates = [sum(side["lost"]) / case.packets for side in (netem, sim)]
    error = math.hypot(batch_standard_error(netem["lost"]), batch_standard_error(sim["lost"]))
    bursts = [runs(side["lost"]) for side in (netem, sim)]
    distance = ks_distance(*bursts)
    print(f"  loss netem {rates[0]:.4f} sim {rates[1]:.4f} (allowed difference "
          f"{Z * error:.4f}); bursts: {len(bursts[0])} vs {len(bursts[1])}, mean length "
          f"{statistics.mean(bursts[0]):.3f} vs {statistics.mean(bursts[1]):.3f}, KS "
          f"{distance:.4f} (critical {ks_critical(*map(len, bursts)):.4f})")
    assert min(rates) > 0.01
    assert abs(rates[0] - rates[1]) <= Z * error
    assert distance <= ks_critical(*map(len, bursts))


def compare_delay(case: Case, netem: dict[str, Any], sim: dict[str, Any], slack: float,
                  vm_floor: list[float], host_floor: list[float]) -> None:
    """One-way delay quantiles p10/p50/p90/p99, each side less its own measurement offset."""
    offsets = [statistics.median(floor) - FLOOR_DELAY_MS for floor in (vm_floor, host_floor)]
    samples = [[delay - offset for delay in side["delays_ms"]]
               for side, offset in zip((netem, sim), offsets, strict=True)]
    for label, sample in zip(("netem", "sim"), samples, strict=True):
        ordered = sorted(sample)
        print(f"  {label}: " + ", ".join(f"p{q * 100:g} {quantile(ordered, q):.2f} ms"
                                         for q in QUANTILES) + f" ({len(sample)} packets)")
    assert netem["distinct"] == sim["distinct"] == case.packets
    assert statistics.median(samples[0]) > 20
    problems = quantiles_agree(*samples, slack=slack + 0.1)
    assert not problems, problems


def compare_duplicate(case: Case, netem: dict[str, Any], sim: dict[str, Any], *_: Any) -> None:
    extra = [side["arrived"] - side["distinct"] for side in (netem, sim)]
    print(f"  duplicates netem {extra[0]} sim {extra[1]} of {case.packets}")
    assert min(extra) > 0
    problem = proportions_agree(extra[0], case.packets, extra[1], case.packets)
    assert problem is None, problem


def compare_reorder(case: Case, netem: dict[str, Any], sim: dict[str, Any], *_: Any) -> None:
    """Packets that skipped the delay (arrived in under half of it) and so overtook others."""
    skipped = [sum(delay < 15 for delay in side["delays_ms"]) for side in (netem, sim)]
    print(f"  sent at once netem {skipped[0]}/{netem['distinct']} sim "
          f"{skipped[1]}/{sim['distinct']}")
    assert min(skipped) > 0
    problem = proportions_agree(skipped[0], netem["distinct"], skipped[1], sim["distinct"])
    assert problem is None, problem


def compare_corrupt(case: Case, netem: dict[str, Any], sim: dict[str, Any], *_: Any) -> None:
    """Corrupted frames seen below UDP (netem: AF_PACKET capture; sim: the datagrams)."""
    print(f"  corrupted netem {netem['corrupted']}/{netem['frames']} sim "
          f"{sim['corrupted']}/{sim['frames']}")
    assert netem["frames"] == sim["frames"] == case.packets
    assert min(netem["corrupted"], sim["corrupted"]) > 0
    problem = proportions_agree(netem["corrupted"], netem["frames"], sim["corrupted"],
                                sim["frames"])
    assert problem is None, problem


def compare_rate(case: Case, netem: dict[str, Any], sim: dict[str, Any], slack: float,
                 *_: Any) -> None:
    """Time per packet of a back-to-back burst: both close to frame * 8 / rate, and to each
    other, within 2% plus the timing slack spread over the burst."""
    rate = float(case.options.removeprefix("rate=").removesuffix("kbit")) * 1000
    expected = case.frame * 8 / rate * 1000
    allowed = 0.02 * expected + slack / (case.packets - 1)
    print(f"  per packet netem {netem['per_packet_ms']:.3f} ms sim {sim['per_packet_ms']:.3f} "
          f"ms, expected {expected:.3f} ms (allowed {allowed:.3f} ms)")
    for side in (netem, sim):
        assert abs(side["per_packet_ms"] - expected) <= allowed
    assert abs(netem["per_packet_ms"] - sim["per_packet_ms"]) <= allowed


COMPARE = {"loss": compare_loss, "delay": compare_delay, "duplicate": compare_duplicate,
           "reorder": compare_reorder, "corrupt": compare_corrupt, "rate": compare_rate}
