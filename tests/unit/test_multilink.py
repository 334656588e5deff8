"""The multi-link scheduler's pure decisions (wire/multilink.py): frames, de-duplication,
failover with a hold time, duplicate."""

from __future__ import annotations

import random
from collections import deque
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkbridge.cli.installed import InstalledPlugins
from linkbridge.cli.lab import stations_mode
from linkbridge.cli.options import UpOptions
from linkbridge.cli.parser import build_parser
from linkbridge.cli.up import UpPlan, plan_up, up_tunnels
from linkbridge.datapath.counters import Counters
from linkbridge.datapath.mss import MssClamp
from linkbridge.datapath.pipeline import link_paces
from linkbridge.errors import ConfigError
from linkbridge.lab.links import LinkEvent, parse_events
from linkbridge.lab.options import LabOptions
from linkbridge.ops.metrics import exposition
from linkbridge.ops.status_data import LINK_ROW, parse_tunnel
from linkbridge.ops.status_format import format_table
from linkbridge.plugin.registry import get_plugin_manager
from linkbridge.wire import drops
from linkbridge.wire.compress.lbhc import Compressor
from linkbridge.wire.frames import UNCOMPRESSED, type_nibble
from linkbridge.wire.liveness import LinkState, Thresholds
from linkbridge.wire.multilink import (
    DATA_HEADER,
    PROBE_FRAME,
    SEQ_SPACE,
    Dedup,
    LinkPace,
    LinkTable,
    Parsed,
    Policy,
    Resequencer,
    Spreader,
    data_frame,
    parse,
)
from tests.helpers.ip_packets import tcp

THRESHOLDS = Thresholds(stale_after=0.3, down_after=0.45)


def test_frames_round_trip() -> None:
    frame = data_frame(SEQ_SPACE + 5, b"\x45payload")
    assert len(frame) == DATA_HEADER + 8
    assert parse(frame) == Parsed(5, b"\x45payload")
    assert parse(PROBE_FRAME) == Parsed(None, b"")
    assert parse(b"\x45bare") == Parsed(None, b"\x45bare")  # a one-link peer's frame


def test_malformed_frames_are_a_drop_reason() -> None:
    for frame in (PROBE_FRAME[:2] + b"\x07", data_frame(1, b"")[:DATA_HEADER],
                  PROBE_FRAME + b"x", PROBE_FRAME[:2] + b"\x01\x00"):
        assert parse(frame) == drops.LINK_PROBE_MALFORMED
    assert drops.LINK_PROBE_MALFORMED in drops.REASONS


@given(st.lists(st.integers(0, 300), max_size=300), st.randoms(use_true_random=False))
def test_dedup_delivers_each_frame_once(seqs: list[int], rnd: random.Random) -> None:
    """Every copy, in any order: each frame delivered once while remembered, exactly as a
    FIFO of the last `remembered` frames says."""
    copies = [data_frame(seq, b"\x45") for seq in seqs for _ in range(rnd.randint(1, 3))]
    rnd.shuffle(copies)
    dedup, remembered = Dedup(remembered=64), deque[bytes](maxlen=64)
    for frame in copies:
        expected = drops.DUPLICATE if frame in remembered else None
        if expected is None:
            remembered.append(frame)
        assert dedup.accept(frame) == expected


def test_dedup_in_order_with_copies_delivers_everything_once() -> None:
    dedup = Dedup()
    frames = [data_frame(seq, b"\x00") for seq in range(SEQ_SPACE - 50, SEQ_SPACE + 50)]
    results = [dedup.accept(frame) for frame in frames for _ in range(2)]
    assert results[::2] == [None] * 100  # across the wrap of the counter
    assert results[1::2] == [drops.DUPLICATE] * 100


def test_a_forged_sequence_number_turns_no_genuine_frame_away() -> None:
    """Sequence numbers travel unauthenticated: a forgery far ahead, or with a genuine
    number and another body, stands only for itself."""
    dedup = Dedup()
    genuine = [data_frame(seq, b"\x45real") for seq in range(1000, 1100)]
    assert dedup.accept(genuine[0]) is None
    for forged in (data_frame(1 << 31, b"x"), data_frame(1050, b"forged"),
                   data_frame(999, b"\x45real")):
        assert dedup.accept(forged) is None  # to the encrypt layer, which refuses it
    assert [dedup.accept(frame) for frame in genuine[1:]] == [None] * 99


class Links:
    """A LinkTable and what each link received, on a clock the test moves."""

    def __init__(self, count: int, policy: Policy = Policy.FAILOVER, hold: float = 10.0) -> None:
        self.now = 0.0
        self.rx = [0] * count
        self.table = LinkTable(count, policy, THRESHOLDS, hold, self.now)

    def run(self, seconds: float, alive: set[int], step: float = 0.05) -> list[tuple[int, ...]]:
        """`seconds` of probes every `step` over the links in `alive`; the targets each tick."""
        seen = []
        for _ in range(round(seconds / step)):
            self.now += step
            for index in alive:
                self.rx[index] += 1
            self.table.observe(self.rx, self.now)
            seen.append(tuple(self.table.targets(self.now)))
        return seen


def test_failover_before_any_link_is_up_sends_on_all() -> None:
    links = Links(2)
    assert tuple(links.table.targets(0.0)) == (0, 1)
    assert links.run(0.1, {1})[-1] == (1,)
    assert links.run(0.1, {0, 1})[-1] == (0,)  # first time up: no hold
    assert links.table.switches == 1


def test_failover_moves_on_timeout_not_on_one_lost_probe() -> None:
    """Stale (0.3 s silent), the link still carries every frame and the next link that is up
    a copy; down (0.45 s), the next link alone. A link stale once is no failover."""
    links = Links(2)
    links.run(1.0, {0, 1})
    ticks = links.run(0.4, {1})  # silent 0.4 s < down_after: stale, still used
    assert ticks == [(0,)] * 5 + [(0, 1)] * 3
    assert links.table.liveness[0].state == LinkState.STALE
    ticks = links.run(0.1, {1})
    assert ticks[-1] == (1,)
    assert links.table.switches == 1


def test_failover_copies_end_when_a_stale_link_hears_again() -> None:
    links = Links(3)
    links.run(1.0, {0, 1, 2})
    links.run(0.15, {2})  # the second link stale too: the copy goes on the third
    assert links.run(0.2, {2})[-1] == (0, 2)
    assert links.run(0.05, {0, 1, 2}) == [(0,)]
    assert links.table.switches == 0 and links.table.active == 0


def test_failover_returns_only_after_hold_time() -> None:
    links = Links(2, hold=10.0)
    links.run(1.0, {0, 1})
    links.run(1.0, {1})
    assert links.table.active == 1
    ticks = links.run(9.9, {0, 1})
    assert set(ticks) == {(1,)}
    assert links.run(0.2, {0, 1})[-1] == (0,)
    assert links.table.switches == 2


def test_failover_flapping_primary_switches_once_each_way() -> None:
    """The issue's figure: down and up every 2 s for 30 s with a 10 s hold time."""
    links = Links(2, hold=10.0)
    links.run(1.0, {0, 1})
    ticks: list[tuple[int, ...]] = []
    for _ in range(8):
        ticks += links.run(2.0, {1}) + links.run(2.0, {0, 1})
    last_return = len(ticks)
    ticks += links.run(12.0, {0, 1})
    assert links.table.switches == 2
    back = next(i for i in range(last_return, len(ticks)) if ticks[i] == (0,))
    assert (back - last_return) * 0.05 <= 10.5


def test_failover_all_down_sends_on_all_and_takes_the_first_back() -> None:
    links = Links(3)
    links.run(1.0, {0, 1, 2})
    assert links.run(1.0, set())[-1] == (0, 1, 2)
    assert links.run(0.1, {2})[-1] == (2,)  # returning, untrusted, but the only one


@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=60))
def test_failover_sends_on_one_usable_link_and_never_flaps(pattern: list[tuple[bool, bool]]
                                                           ) -> None:
    """Any pattern of outages (each 0.5 s, longer than the link timeout: no link is left only
    stale, when a copy would also go on the next): a frame goes out on exactly one link while
    one is usable, that link is usable, and failover never returns to the primary within the
    hold time of its return (its first time up is trusted at once)."""
    links = Links(2, hold=1.0)
    for up0, up1 in pattern:
        alive = {i for i, up in ((0, up0), (1, up1)) if up}
        before = links.table.active
        targets = links.run(0.5, alive)[-1]
        table = links.table
        if table.usable(0) or table.usable(1):
            assert len(targets) == 1 and table.usable(targets[0])
        else:
            assert targets == (0, 1)
        since = table.usable_since[0]
        if (before == 1 and targets == (0,) and table.usable(1) and table.returning[0]
                and since is not None):
            assert links.now - since >= 1.0


def test_duplicate_sends_on_every_usable_link() -> None:
    links = Links(3, Policy.DUPLICATE)
    assert tuple(links.table.targets(0.0)) == (0, 1, 2)
    assert links.run(0.2, {0, 2})[-1] == (0, 2)
    assert links.run(1.0, {2})[-1] == (2,)


def test_balance_spreads_by_the_links_rates_once_the_fastest_is_busy() -> None:
    """Earliest finish by each link's frame time: idle, the fastest link takes a frame; under
    load, 10 and 5 Mbit/s links share bytes 2:1; a link without figures counts as nominal."""
    ten, five = (LinkPace(lambda size: size * 8 / 10e6), LinkPace(lambda size: size * 8 / 5e6))
    spreader = Spreader([five, ten])
    assert [spreader.pick((0, 1), 1000, now) for now in (0.0, 1.0)] == [1, 1]
    picks = [spreader.pick((0, 1), 1000, 2.0) for _ in range(300)]  # a burst
    assert picks.count(1) == 200 and picks.count(0) == 100
    assert Spreader([None, ten]).pick((0, 1), 1000, 0.0) == 0  # 100 Mbit/s nominal
    assert Spreader([ten, ten]).pick((1,), 1000, 0.0) == 1  # only the usable links


def test_balance_sends_on_a_slower_link_once_the_faster_one_queues_as_long() -> None:
    """Equal rates, the second link 8 ms later (10 frames' time): a burst's first 10 frames
    all take the first link, then they alternate; arrivals stay in the order sent."""
    def ten_mbit(size: int) -> float:
        return size * 8 / 10e6

    spreader = Spreader([LinkPace(ten_mbit), LinkPace(ten_mbit, delay=0.008)])
    picks = [spreader.pick((0, 1), 1000, 0.0) for _ in range(30)]
    assert picks[:10] == [0] * 10 and picks[10:].count(1) == 10
    arrivals, busy = [], [0.0, 0.0]
    for index in picks:
        busy[index] += ten_mbit(1000)
        arrivals.append(busy[index] + (0.008 if index else 0.0))
    assert all(later >= earlier - ten_mbit(1000) for earlier, later in pairwise(arrivals))


def test_balance_uses_the_usable_links_and_a_dead_one_leaves_it() -> None:
    links = Links(2, Policy.BALANCE)
    assert tuple(links.table.targets(0.0, 1000)) == (0, 1)  # none up yet: on all
    links.run(0.5, {0, 1})
    burst = [tuple(links.table.targets(links.now, 1000)) for _ in range(10)]
    assert sorted(burst) == [(0,)] * 5 + [(1,)] * 5
    assert links.table.in_use(links.now) == (0, 1)
    links.run(0.5, {1})
    assert {links.table.targets(links.now, 1000) for _ in range(10)} == {(1,)}
    assert links.table.in_use(links.now) == (1,)
    links.run(0.1, {0, 1})  # back at once: balance has no hold time
    assert links.table.in_use(links.now) == (0, 1) and links.table.switches == 0


def test_resequencer_puts_frames_back_in_order() -> None:
    """Across the counter's wrap; a frame ahead waits for those before it."""
    seqs = [SEQ_SPACE - 2, SEQ_SPACE - 1, 0, 1, 2, 3]
    arrival = [seqs[i] for i in (1, 0, 3, 2, 5, 4)]
    reseq, out = Resequencer(wait=0.05), []
    reseq.expected = seqs[0]
    for seq in arrival:
        out += reseq.push(seq, seq.to_bytes(4, "big"), 0.0)
    assert out == [seq.to_bytes(4, "big") for seq in seqs]
    assert reseq.reordered == 3 and reseq.gaps == 0 and reseq.deadline() is None


def test_resequencer_gives_a_gap_up_after_the_wait_and_passes_late_frames() -> None:
    reseq = Resequencer(wait=0.05)
    assert reseq.push(10, b"10", 0.0) == [b"10"]
    assert reseq.push(12, b"12", 0.0) == [] and reseq.push(13, b"13", 0.01) == []
    assert reseq.deadline() == 0.05
    assert reseq.expire(0.049) == []
    assert reseq.expire(0.05) == [b"12", b"13"] and reseq.gaps == 1
    assert reseq.push(11, b"11", 0.06) == [b"11"]  # late: passes at once
    assert reseq.push(14, b"14", 0.07) == [b"14"]


def test_resequencer_holds_a_bounded_number_of_frames() -> None:
    reseq = Resequencer(wait=10.0, limit=4)
    reseq.push(0, b"0", 0.0)
    assert [reseq.push(seq, bytes([seq]), 0.0) for seq in (2, 3, 4, 5)] == [[]] * 4
    assert reseq.push(7, b"7", 0.0) == [bytes([seq]) for seq in (2, 3, 4, 5)]
    assert reseq.push(6, b"6", 0.0) == [b"6", b"7"]


@given(st.lists(st.integers(0, 2), min_size=1, max_size=200), st.randoms(use_true_random=False),
       st.integers(0, SEQ_SPACE - 1))
def test_resequencer_delivers_every_frame_once_and_never_drops(
        delays: list[int], rnd: random.Random, start: int) -> None:
    """Frames delayed by up to two places, some lost, some forged far off: every frame that
    came is delivered exactly once (once its wait ended at the latest), genuine ones in order
    unless their gap was given up."""
    seqs = [(start + n) % SEQ_SPACE for n in range(len(delays))]
    order = sorted(range(len(seqs)), key=lambda n: n + delays[n] + rnd.random() / 2)
    arrivals = [seqs[n] for n in order if rnd.random() > 0.1]
    if rnd.random() < 0.3:
        arrivals.insert(rnd.randrange(len(arrivals) + 1), (start + (1 << 31)) % SEQ_SPACE)
    reseq, out, now = Resequencer(wait=0.05, limit=8), [], 0.0
    for seq in arrivals:
        now += 0.01
        out += reseq.expire(now) + reseq.push(seq, seq.to_bytes(4, "big"), now)
    out += reseq.expire(now + 0.05)
    assert sorted(out) == sorted(seq.to_bytes(4, "big") for seq in arrivals)
    assert reseq.deadline() is None


def test_a_forged_number_delays_genuine_frames_by_the_wait_at_most() -> None:
    reseq = Resequencer(wait=0.05)
    reseq.push(100, b"100", 0.0)
    assert reseq.push(101 + 50, b"forged", 0.0) == []  # ahead: held
    assert reseq.push(101, b"101", 0.01) == [b"101"]  # genuine frames pass
    assert reseq.push(105, b"105", 0.02) == []
    assert reseq.expire(0.05) == [b"105", b"forged"]  # the forgery's wait gives the gap up
    far = reseq.push((1 << 31) + 7, b"far", 0.06)
    assert far == [b"far"] and reseq.push(106, b"106", 0.07) == [b"106"]


def test_status_shows_each_link_as_a_side_with_its_state() -> None:
    document = {"device": "lb0", "link_state": "up", "links": [
        {"name": "udp:198.18.0.2:47000", "state": "down", "active": False,
         "counters": {"rx_packets": 3, "tx_packets": 9, "drops": {"send_error": 4}}},
        {"name": "sim:198.18.2.2:47300", "state": "up", "active": True,
         "counters": {"rx_packets": 7, "tx_packets": 8, "drops": {}}}]}
    tunnel = parse_tunnel(document)
    labels = [label for label, _ in tunnel.sides()]
    assert labels[2:] == [LINK_ROW + "udp:198.18.0.2:47000", LINK_ROW + "sim:198.18.2.2:47300"]
    table = format_table([tunnel], 0.0).splitlines()
    row = next(line for line in table if "udp:198.18.0.2" in line).split()
    assert row[1:3] == ["down", "3"] and "send_error=4" in row
    assert next(line for line in table if "sim:198.18.2.2" in line).split()[1] == "up*"
    assert ('linkbridge_drops_total{tunnel="lb0",pid="0",link="",'
            'side="link:udp:198.18.0.2:47000",reason="send_error"} 4') in exposition([tunnel])


def test_a_refresh_sends_every_flow_with_a_full_header_again() -> None:
    """After a failover the compressor relies on no context the peer set up from frames of
    the old link."""
    compressor = Compressor()
    packets = [tcp(seq=1000 + 100 * n, payload=bytes(100)) for n in range(3)]
    first, second = compressor.compress(packets[0]), compressor.compress(packets[1])
    assert type_nibble(first[0]) == UNCOMPRESSED and type_nibble(second[0]) != UNCOMPRESSED
    compressor.refresh_all()
    assert type_nibble(compressor.compress(packets[2])[0]) == UNCOMPRESSED


def plan_of(*argv: str, config: Path | None = None) -> UpPlan:
    plugins = InstalledPlugins(get_plugin_manager)
    args = build_parser().parse_args(["up", *argv, *(("-c", str(config)) if config else ())])
    [tunnel] = up_tunnels(args, plugins)
    return plan_up(UpOptions.from_args(tunnel.args), plugins)


def test_links_from_a_config_list_each_fragment_to_its_own_mtu(tmp_path: Path) -> None:
    config = tmp_path / "tunnel.toml"
    config.write_text('link = ["udp:198.18.0.2:47000", "sim:198.18.2.2:47300?mtu=100"]\n'
                      'link_policy = "duplicate"\nkeepalive = 0.2\nremote = ["198.19.0.2"]\n')
    plan = plan_of(config=config).pipeline
    links = plan.description.links
    assert links is not None and links.policy == Policy.DUPLICATE
    assert (links.probe_interval, links.thresholds.down_after) == (0.2, 0.45)
    assert plan.tunnel_mtu == 1472 - DATA_HEADER
    assert plan.fragment_frame is None and plan.link_frames == (100,)  # whole on udp: only


def test_one_link_plans_no_scheduler_and_bad_combinations_are_refused() -> None:
    plan = plan_of("--link", "udp:198.18.0.2:47000", "--remote", "198.19.0.2").pipeline
    assert plan.description.links is None and plan.tunnel_mtu == 1472
    two = ("--link", "udp:198.18.0.2:47000", "--link", "udp:198.18.2.2:47001")
    with pytest.raises(ConfigError, match="--offload on cannot run over several links"):
        plan_of(*two, "--offload", "on")
    with pytest.raises(SystemExit):
        plan_of(*two, "--link-policy", "roundrobin")
    with pytest.raises(SystemExit):
        plan_of(*two, "--reorder-wait", "-1")


def test_clamp_mss_plans_the_smallest_links_packet_and_needs_several_links() -> None:
    two = ("--link", "udp:198.18.0.2:47000", "--link", "sim:198.18.2.2:47300?mtu=100")
    assert plan_of(*two).pipeline.mss_packet is None
    assert plan_of(*two, "--clamp-mss").pipeline.mss_packet == 100 - DATA_HEADER
    with pytest.raises(ConfigError, match="--clamp-mss needs several --link"):
        plan_of("--link", "udp:198.18.0.2:47000", "--clamp-mss")


def test_the_clamp_lowers_syns_both_ways_and_passes_the_rest() -> None:
    """MssClamp over a recording endpoint (no I/O)."""
    syn = tcp(flags=0x02, options=bytes((2, 4, 5, 0xB4)))  # MSS 1460
    below = Recorder([syn, tcp()])
    clamp = MssClamp(below, 93)
    clamp.send(syn)
    clamp.send(tcp())
    [sent_syn, sent_ack] = below.sent
    received = clamp.receive(0.0)
    assert sent_syn == received[0] == tcp(flags=0x02, options=bytes((2, 4, 0, 53)))
    assert sent_ack == received[1] == tcp()
    assert clamp.counters is below.counters and clamp.name == below.name


class Recorder:
    """An endpoint that records what is sent and gives `packets` once."""

    def __init__(self, packets: list[bytes]) -> None:
        self.name = "recorder"
        self.counters = Counters()
        self.sent: list[bytes] = []
        self.packets = packets

    def send(self, packet: bytes) -> None:
        self.sent.append(packet)

    def receive(self, timeout: float) -> list[bytes]:
        packets, self.packets = self.packets, []
        return packets

    def close(self) -> None:
        pass


def test_balance_plans_each_link_with_its_own_figures() -> None:
    plan = plan_of("--link", "udp:198.18.0.2:47000", "--link", "sim:198.18.2.2:47300?rate=1mbit",
                   "--link-policy", "balance", "--reorder-wait", "0").pipeline
    links = plan.description.links
    assert links is not None and links.policy == Policy.BALANCE and links.reorder_wait == 0.0
    udp_pace, sim_pace = link_paces(plan.description)
    assert udp_pace is None and sim_pace is not None and sim_pace.frame_time(1000) >= 0.008


def test_the_stations_lab_takes_no_link_events() -> None:
    with pytest.raises(ConfigError, match="--fail-link is an option of the two-host lab"):
        stations_mode(build_parser().parse_args(["lab", "--stations", "3", "--fail-link",
                                                 "1@2"]))


def test_lab_link_events_in_time_order_and_bad_ones_refused() -> None:
    events = parse_events(["1@5s", "2@0.5"], ["1@15"], links=2)
    assert events == [LinkEvent(2, 0.5, False), LinkEvent(1, 5.0, False),
                      LinkEvent(1, 15.0, True)]
    assert events[2].label == "link 1 restored at 15 s"
    for fails, error in ((["3@1"], "the lab has links 1 to 2"), (["1"], "give LINK@SECONDS"),
                         (["0@1"], "the lab has links"), (["1@-2"], "give LINK@SECONDS")):
        with pytest.raises(ConfigError, match=error):
            parse_events(fails, [], links=2)
    with pytest.raises(ConfigError, match="--restore-link 'x': give LINK@SECONDS"):
        LabOptions(restore_link=("x",)).check()
    args = LabOptions(more_links=("udp",), link_policy="balance", keepalive=0.2).tunnel_args()
    assert args == ["--keepalive", "0.2", "--link-policy", "balance"]
    assert LabOptions(link_policy="balance").tunnel_args() == []  # one link: no policy
