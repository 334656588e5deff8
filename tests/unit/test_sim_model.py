"""The sim: impairment model, exactly: MTU cap, corruption, duplication, reordering, rate and
queue, determinism per seed, and trace record/replay. Pure logic, time passed in."""

from __future__ import annotations

import random

import pytest
from linkbridge_sim.config import SimConfig
from linkbridge_sim.decisions import Decision, RandomDecisions, ReplayDecisions
from linkbridge_sim.impairment import Impairment, Outcome, flip_bit
from linkbridge_sim.rate import RateQueue
from linkbridge_sim.trace import TraceWriter, losses_of_size, read_trace

from linkbridge.errors import ConfigError


def impairment(seed: int = 1, **settings: object) -> Impairment:
    config = SimConfig(**settings)  # type: ignore[arg-type]
    return Impairment(config, RandomDecisions(config, random.Random(seed)))


def packets(count: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randrange(20, 1400)) for _ in range(count)]


def run(model: Impairment, stream: list[bytes], gap: float = 0.001) -> list[Outcome]:
    return [model.offer(packet, index * gap) for index, packet in enumerate(stream)]


def test_no_impairment_releases_every_packet_at_once_unchanged() -> None:
    model = impairment()
    outcome = model.offer(b"abc", 5.0)
    assert [(r.at, r.packet) for r in outcome.releases] == [(5.0, b"abc")]
    assert outcome.drops == []


def test_over_mtu_packets_are_dropped_without_a_random_draw() -> None:
    model = impairment(mtu=100, loss=0.5)
    outcome = model.offer(bytes(101), 0.0)
    assert outcome.drops == ["mtu"] and outcome.releases == [] and outcome.decision is None
    twin = impairment(mtu=100, loss=0.5)
    stream = packets(50, seed=3)
    small = [p[:100] for p in stream]
    assert [o.decision for o in run(model, small)] == [o.decision for o in run(twin, small)]


def test_fixed_delay_is_exact() -> None:
    model = impairment(delay=0.040)
    assert [r.at for r in model.offer(b"x", 2.0).releases] == [pytest.approx(2.040)]


def test_corrupt_flips_exactly_one_bit_of_the_packet() -> None:
    model = impairment(corrupt=1.0)
    for packet in packets(200):
        out = model.offer(packet, 0.0).releases[0].packet
        assert len(out) == len(packet)
        diff = [a ^ b for a, b in zip(out, packet, strict=True) if a != b]
        assert len(diff) == 1 and bin(diff[0]).count("1") == 1


def test_flip_bit_numbers_bits_from_the_first_byte() -> None:
    assert flip_bit(b"\x00\x00", 0) == b"\x80\x00"
    assert flip_bit(b"\x00\x00", 15) == b"\x00\x01"


def test_duplicate_sends_two_copies_and_loss_of_a_duplicate_leaves_one() -> None:
    model = impairment(duplicate=1.0, delay=0.01)
    assert len(model.offer(b"p", 0.0).releases) == 2
    both = impairment(duplicate=1.0, loss=1.0)
    outcome = both.offer(b"p", 0.0)
    assert len(outcome.releases) == 1 and outcome.drops == ["loss"]


def test_reordered_packets_skip_the_delay_and_overtake() -> None:
    model = impairment(delay=0.1, reorder=0.3, seed=4)
    outcomes = run(model, [i.to_bytes(2, 'big') for i in range(1000)], gap=0.001)
    skipped = [o for o in outcomes if o.decision is not None and o.decision.reordered]
    assert 250 < len(skipped) < 350
    assert all(o.releases[0].at == pytest.approx(o.index * 0.001) for o in skipped)
    order = [r.packet for o in outcomes for r in sorted(o.releases, key=lambda r: r.at)]
    arrival = [r.packet for r in sorted((r for o in outcomes for r in o.releases),
                                        key=lambda r: r.at)]
    assert arrival != order  # reordered on the wire


def test_rate_serialises_with_overhead_after_the_delay() -> None:
    queue = RateQueue(rate=8000.0, overhead=10, limit=100)  # 1000 bytes/s
    assert queue.schedule(90, 0.0, 0.0) == pytest.approx(0.1)  # (90+10) bytes = 0.1 s
    assert queue.schedule(90, 0.0, 0.0) == pytest.approx(0.2)  # waits for the first
    assert queue.schedule(40, 0.5, 0.05) == pytest.approx(0.6)  # delay first, then 50 bytes
    assert queue.schedule(190, 0.0, 1.0) == pytest.approx(1.2)  # link idle again


def test_queue_tail_drops_when_limit_packets_are_held_and_frees_on_release() -> None:
    queue = RateQueue(rate=8000.0, overhead=0, limit=3)  # 100-byte packet = 0.1 s
    times = [queue.schedule(100, 0.0, 0.0) for _ in range(5)]
    assert times == [pytest.approx(0.1), pytest.approx(0.2), pytest.approx(0.3), "queue_full",
                     "queue_full"]
    assert queue.held(0.1) == 2
    assert queue.schedule(100, 0.0, 0.1) == pytest.approx(0.4)


def test_delayed_packets_count_against_the_limit_without_a_rate() -> None:
    model = impairment(delay=1.0, limit=10)
    outcomes = run(model, [b"x"] * 15, gap=0.01)
    assert sum(o.drops == ["queue_full"] for o in outcomes) == 5
    assert model.offer(b"late", 1.5).releases  # the first ones have left by then


def test_same_seed_gives_identical_decisions_and_other_seed_does_not() -> None:
    settings = dict(loss=0.1, loss_corr=0.2, delay=0.03, jitter=0.01, delay_corr=0.3,
                    distribution="normal",
                    reorder=0.05, duplicate=0.02, corrupt=0.05, rate=1e6, limit=50)
    stream = packets(2000)
    first = [o.to_record() for o in run(impairment(seed=11, **settings), stream)]
    second = [o.to_record() for o in run(impairment(seed=11, **settings), stream)]
    other = [o.to_record() for o in run(impairment(seed=12, **settings), stream)]
    assert first == second
    assert first != other


def test_same_seed_gives_identical_trace_files(tmp_path: object) -> None:
    settings = dict(loss=0.05, delay=0.04, jitter=0.01, corrupt=0.01, duplicate=0.01)
    paths = []
    for name in ("one", "two"):
        path = f"{tmp_path}/{name}.jsonl"
        writer = TraceWriter(path, 99, "test")
        for outcome in run(impairment(seed=99, **settings), packets(3000)):
            writer.write(outcome.to_record())
        writer.close()
        paths.append(path)
    with open(paths[0], "rb") as one, open(paths[1], "rb") as two:
        assert one.read() == two.read()


def test_replaying_a_trace_reproduces_the_run(tmp_path: object) -> None:
    config = SimConfig(gemodel=(0.02, 0.2, 0.6, 0.01), delay=0.05, jitter=0.02,
                       distribution="pareto", reorder=0.05, duplicate=0.02, corrupt=0.03,
                       rate=2e6, overhead=28, limit=200, mtu=1200)
    stream = packets(5000)
    original = Impairment(config, RandomDecisions(config, random.Random(5)))
    path = f"{tmp_path}/run.jsonl"
    writer = TraceWriter(path, 5, config.describe())
    recorded = run(original, stream)
    for outcome in recorded:
        writer.write(outcome.to_record())
    writer.close()
    replayed = run(Impairment(config, ReplayDecisions(read_trace(path))), stream)
    assert [o.releases for o in replayed] == [o.releases for o in recorded]
    assert [o.drops for o in replayed] == [o.drops for o in recorded]
    assert sum(bool(o.drops) for o in recorded) > 100  # the run did impair


def test_an_exhausted_replay_passes_packets_unimpaired() -> None:
    model = Impairment(SimConfig(), ReplayDecisions([{"i": 0, "delays": [0.5]}]))
    assert model.offer(b"a", 0.0).releases[0].at == 0.5
    assert model.offer(b"b", 1.0).releases[0].at == 1.0


@pytest.mark.parametrize(("line", "message"), [
    ('{"delays": "soon"}', "'delays' must be a list"),
    ('{"delays": [-1]}', "'delays' must be a list"),
    ('{"corrupt_bit": -3}', "'corrupt_bit' must be"),
])
def test_malformed_decision_records_are_value_errors(line: str, message: str) -> None:
    import json

    with pytest.raises(ValueError, match=message):
        Decision.from_record(json.loads(line))


@pytest.mark.parametrize(("content", "message"), [
    ("", "not a sim trace"),
    ('{"format": "other"}\n', "not a sim trace"),
    ('{"format": "linkbridge-sim-trace/1"}\nnot json\n', "line 2: not JSON"),
    ('{"format": "linkbridge-sim-trace/1"}\n[1]\n', "line 2: not a JSON object"),
])
def test_bad_trace_files_are_one_line_errors(tmp_path: object, content: str,
                                             message: str) -> None:
    path = f"{tmp_path}/bad.jsonl"
    with open(path, "w") as file:
        file.write(content)
    with pytest.raises(ConfigError, match=message):
        read_trace(path)
    with pytest.raises(ConfigError, match="cannot read trace"):
        read_trace(f"{tmp_path}/missing.jsonl")


def test_losses_of_size_are_the_drops_of_that_size_in_order(tmp_path: object) -> None:
    path = f"{tmp_path}/link.jsonl"
    writer = TraceWriter(path, 1, "loss 10%")
    for record in ({"i": 0, "size": 3, "lost": True}, {"i": 1, "size": 90},
                   {"i": 2, "size": 90, "lost": True}, {"i": 3, "size": 90, "drops": ["mtu"]},
                   {"i": 4, "size": 40, "lost": True}, {"i": 5, "size": 90}):
        writer.write(record)
    writer.close()
    assert losses_of_size(path, 90) == [False, True, True, False]
    assert losses_of_size(path, 12) == []


def test_replay_records_need_their_packet_index() -> None:
    with pytest.raises(ValueError, match="packet index 'i'"):
        ReplayDecisions([{"delays": [0.1]}])


def test_netem_arguments_name_the_same_impairment() -> None:
    from linkbridge_sim.netem import netem_arguments

    config = SimConfig(delay=0.04, jitter=0.01, delay_corr=0.25, distribution="normal",
                       loss=0.05, duplicate=0.01, corrupt=0.001, reorder=0.25, rate=9600,
                       overhead=14)
    assert netem_arguments(config) == [
        "limit", "1000", "delay", "40000us", "10000us", "25%", "distribution", "normal",
        "loss", "random", "5%", "duplicate", "1%", "corrupt", "0.1%", "reorder", "25%",
        "rate", "9600bit", "packetoverhead", "14"]
    uniform = SimConfig(delay=0.02, jitter=0.005)  # netem's default: tc knows no "uniform" table
    assert netem_arguments(uniform) == ["limit", "1000", "delay", "20000us", "5000us"]
    assert netem_arguments(SimConfig(gemodel=(0.01, 0.1, 0.7, 0.001), limit=50)) == [
        "limit", "50", "loss", "gemodel", "1%", "10%", "70%", "0.1%"]
    assert netem_arguments(SimConfig(loss_state=(0.02, 0.3, 0.1, 0.4, 0.01)))[2:] == [
        "loss", "state", "2%", "30%", "10%", "40%", "1%"]
