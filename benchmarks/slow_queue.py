"""The link-aware queue over the Dire Wolf-calibrated radio: `--queue off` vs `on` in one run.

Two lab hosts joined by linkbridge over `sim:` with `duplex=half`, AFSK 1200 bit/s, AX.25
framing and Dire Wolf 1.6's TNC settings (TXDELAY 300 ms, TXTAIL 100 ms, PERSIST 63, SLOTTIME
100 ms, a slot before the first draw, every queued frame after one key-up), MTU 256, as
docs/sim.md calibrates against the real modems (issue 32). Each mode runs a TCP transfer A -> B
(20,000 bytes) and, while it runs, pings A -> B, on new lab hosts; both tunnels record what
they carry (--pcap). Targets:

- with the queue, no TCP segment (SYN included) reaches B again within one link round trip
  (the sim: link's own estimate) of its first copy: a retransmission the queue should have
  dropped went on the air;
- bulk TCP goodput, on / off >= 1.2;
- ping RTT during the transfer (mean), on / off <= 0.6.

It also prints, per mode, what crossed the air each way (from both tunnels' captures:
segments, their later copies, pure ACKs, the rest) and the medium's counters per station
(frames, key-ups, collisions, seconds on air), and accounts for the airtime each way by what
the frames carried, the key-ups' TXDELAY and TXTAIL, and what nobody received (collisions),
up to the transfer's end; the rest of the transfer's time nobody sent (CSMA deferrals); and
the least time the same frames and key-ups take with a mean deferral each: what limits the
goodput.

Exits 1 when a target is missed. Needs root (network namespaces, TUN devices). Slow: the
transfers take minutes at 1200 bit/s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from linkbridge_sim.links import SimLink
from linkbridge_sim.medium import query_stats
from linkbridge_sim.medium_protocol import DEFAULT_PORT
from linkbridge_sim.radio import RadioSettings, mean_deferral

from linkbridge.datapath.pcap import FILE_HEADER, RECORD_HEADER
from linkbridge.errors import LinkbridgeError
from linkbridge.lab import netns
from linkbridge.lab.probes import TransferResult, ping, tcp_transfer
from linkbridge.lab.run import lab_tunnels
from linkbridge.lab.topology import OVERLAY, UNDERLAY, TwoHosts, two_hosts
from linkbridge.plugin.registry import LinkRegistry, get_plugin_manager
from linkbridge.wire.compress.headers import TCP, parse
from linkbridge.wire.queue import ACK, FIN, SYN

DIRE_WOLF = ("duplex=half&rate=1200&txdelay=300ms&txtail=100ms&persist=63&slottime=100ms"
             "&slotwait=on&burst=64&framing=ax25&mtu=256")
GOODPUT_TARGET, RTT_TARGET = 1.2, 0.6
MTU, HEADERS, ACK_BYTES = 256, 52, 52  # IPv4 and TCP with timestamps: a segment, an ACK
MODES = ("off", "on")
PORT = 5230


KINDS = ("data", "again", "ACKs", "other")  # what a frame carried, as Arrived sorts them


@dataclass
class Arrived:
    """What one side received of the other's packets (its tunnel's --pcap), by kind: TCP
    segments with sequence space (`data`: first copies; `again`: later copies, retransmissions
    that crossed the air), pure ACKs, and the rest (pings); how many and their seconds on the
    air (the frame's data, by the radio's framing: a sim: frame is the IP packet as it is)."""

    frames: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(KINDS, 0.0))

    def add(self, kind: str, seconds: float) -> None:
        self.frames[kind] += 1
        self.seconds[kind] += seconds

    def __str__(self) -> str:
        frames = self.frames
        return (f"{frames['data']} segments + {frames['again']} again, {frames['ACKs']} ACKs, "
                f"{frames['other']} other")


@dataclass
class Outcome:
    """One mode's figures."""

    transfer: TransferResult
    rtts_ms: list[float]
    pings_sent: int
    repeats: int  # segments that reached B again within one round trip of their first copy
    at_b: Arrived  # what B received from A, A what from B
    at_a: Arrived
    medium: dict[str, dict[str, float]]  # each station's counters ("A", "B")

    @property
    def goodput(self) -> float:
        return self.transfer.mbit_per_s * 1e6

    @property
    def rtt_ms(self) -> float:
        return statistics.fmean(self.rtts_ms) if self.rtts_ms else float("inf")


def pcap_records(path: str) -> Iterator[tuple[float, bytes]]:
    """(time, packet) of each record of a LINKTYPE_RAW pcap file linkbridge wrote."""
    with open(path, "rb") as file:
        data = file.read()
    at = FILE_HEADER.size
    while at + RECORD_HEADER.size <= len(data):
        seconds, micros, length, _original = RECORD_HEADER.unpack_from(data, at)
        at += RECORD_HEADER.size
        yield seconds + micros / 1e6, data[at:at + length]
        at += length


def repeats_within(path: str, source: bytes, round_trip: float) -> int:
    """TCP segments from `source` that carry sequence space and arrive again (same flow,
    sequence, flags and payload) within `round_trip` seconds of their first copy."""
    first: dict[tuple[bytes, int, int, bytes], float] = {}
    repeats = 0
    for when, packet in pcap_records(path):
        headers = parse(packet)
        if headers is None or headers.proto != TCP or packet[12:16] != source:
            continue
        payload = packet[headers.ihl + headers.thlen:]
        if not payload and not headers.flags & (SYN | FIN):
            continue
        identity = (headers.key, headers.seq, headers.flags, payload)
        if identity in first and when - first[identity] <= round_trip:
            repeats += 1
        first.setdefault(identity, when)
    return repeats


def arrived(path: str, source: bytes, airtime: Callable[[bytes], float],
            until: float) -> Arrived:
    """What the tunnel recording `path` received from `source` (an IPv4 address) by `until`
    (time.time()), with each frame's `airtime`."""
    counts, seen = Arrived(), set()
    for when, packet in pcap_records(path):
        headers = parse(packet)
        if packet[12:16] != source or when > until:
            continue
        kind = "other"
        if headers is not None and headers.proto == TCP:
            payload = packet[headers.ihl + headers.thlen:]
            if payload or headers.flags & (SYN | FIN):
                identity = (headers.key, headers.seq, headers.flags, payload)
                kind = "again" if identity in seen else "data"
                seen.add(identity)
            elif headers.flags == ACK:
                kind = "ACKs"
        counts.add(kind, airtime(packet))
    return counts


def station_counts(hosts: TwoHosts) -> dict[str, dict[str, float]]:
    """The medium's counters of A's and B's stations, now (asked from inside host A)."""
    with netns.inside(hosts.a):
        stations = query_stats((UNDERLAY[0], DEFAULT_PORT))["stations"]
    labels = {UNDERLAY[0]: "A", UNDERLAY[1]: "B"}
    return {labels.get(key.rsplit(":", 1)[0], key): counts for key, counts in stations.items()}


def run_mode(hosts: TwoHosts, link: str, mode: str, size: int, pings: int,
             registry: LinkRegistry, directory: str, timing: SimLink) -> Outcome:
    pcap, pcap_a = (os.path.join(directory, f"{side}-{mode}.pcap") for side in "ba")
    round_trip = timing.round_trip()
    done: dict[str, TransferResult] = {}
    medium: dict[str, dict[str, float]] = {}
    ended: list[float] = []

    def move() -> None:
        """The transfer; at its end, the medium's counters and the time (the captures' clock)."""
        done["transfer"] = tcp_transfer(hosts.b, OVERLAY[1], hosts.a, size, port=PORT,
                                        timeout=120.0)
        ended.append(time.time())
        medium.update(station_counts(hosts))

    with lab_tunnels(hosts, link, extra_args=("--queue", mode),
                     side_args=(("--pcap", pcap_a), ("--pcap", pcap)), registry=registry):
        mover = threading.Thread(target=move)
        mover.start()
        time.sleep(2 * round_trip)  # the connection is up and its window filling
        result = ping(hosts.a, OVERLAY[1], count=pings, interval=1.0, timeout=60.0)
        mover.join()
    a, b = (bytes(map(int, address.split("."))) for address in OVERLAY)
    assert timing.radio is not None
    airtime = timing.radio.frame_airtime
    return Outcome(done["transfer"], result.rtts_ms, pings, repeats_within(pcap, a, round_trip),
                   arrived(pcap, a, airtime, ended[0]), arrived(pcap_a, b, airtime, ended[0]),
                   medium)


def air_lines(mode: str, outcome: Outcome, radio: RadioSettings) -> list[str]:
    """What crossed the air each way in one mode, the medium's counters, and the airtime
    accounting: seconds on the air by what the frames carried (from the captures), the
    key-ups' TXDELAY and TXTAIL (the medium's count of them), the rest of the medium's
    airtime (frames nobody received: collisions), and the transfer's time nobody sent in
    (CSMA deferrals, idle)."""
    lines = [f"{mode}: B got {outcome.at_b}; A got {outcome.at_a}"]
    for label, counts in sorted(outcome.medium.items()):
        lines.append(f"{mode}: station {label}: {counts['sent']:.0f} frames on air in "
                     f"{counts['transmissions']:.0f} key-ups, {counts['collisions']:.0f} "
                     f"collided, {counts['airtime']:.1f} s on air")
    columns = (*KINDS, "key-ups", "lost", "on air")  # lost: collided, or on the air at the end
    lines.append(f"{mode}: airtime, s " + "".join(f"{name:>8}" for name in columns))
    on_air = 0.0
    for sender, receiver, got in (("A", "B", outcome.at_b), ("B", "A", outcome.at_a)):
        counts = outcome.medium[sender]
        keying = counts["transmissions"] * (radio.txdelay + radio.txtail)
        lost = counts["airtime"] - keying - sum(got.seconds.values())
        on_air += counts["airtime"]
        cells = (*got.seconds.values(), keying, lost, counts["airtime"])
        lines.append(f"{mode}:   {sender} -> {receiver}  " + "".join(f"{c:8.1f}" for c in cells))
    seconds = outcome.transfer.seconds
    keyups = sum(outcome.medium[side]["transmissions"] for side in "AB")
    least = on_air + keyups * mean_deferral(radio.persist, radio.slottime, radio.slotwait)
    lines.append(f"{mode}: the transfer's {seconds:.1f} s: {on_air:.1f} s on the air, "
                 f"{seconds - on_air:.1f} s nobody sent (CSMA deferrals, idle); these frames "
                 f"and key-ups with a mean deferral each take {least:.1f} s: "
                 f"{outcome.transfer.received_bytes * 8 / least:.0f} bit/s")
    return lines


def ceiling(link: SimLink) -> str:
    """What AX.25 framing allows a bulk transfer at most, key-ups aside."""
    assert link.radio is not None
    data, ack = link.radio.airtime(MTU), link.radio.airtime(ACK_BYTES)
    payload = (MTU - HEADERS) * 8
    return (f"framing ceiling: {payload / data:.0f} bit/s with no ACK on the air, "
            f"{payload / (data + ack):.0f} with one per segment (a full frame "
            f"{data:.2f} s, an ACK {ack:.2f} s, key-ups aside)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks slow-queue",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--bytes", type=int, default=20_000,
                        help="TCP transfer size (20000: at 10000 the handshake, the pings and "
                             "their turns of the channel, the same with the queue as without, "
                             "are a tenth of the airtime, docs/queue.md)")
    parser.add_argument("--pings", type=int, default=4, help="pings during it (4)")
    parser.add_argument("--seed", type=int, default=7, help="the channel's seed (7)")
    parser.add_argument("--only", choices=MODES, help="run one mode and print its figures")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("slow-queue: error: needs root (network namespaces, TUN)", file=sys.stderr)
        return 2
    link = f"sim:?{DIRE_WOLF}&seed={args.seed}"
    registry = LinkRegistry(get_plugin_manager())
    timing = registry.create_link(f"sim:127.0.0.1:9?{DIRE_WOLF}")
    assert isinstance(timing, SimLink) and timing.radio is not None
    round_trip = timing.round_trip()
    try:
        outcomes: dict[str, Outcome] = {}
        with tempfile.TemporaryDirectory(prefix="lb-queue-") as tmp:
            for mode in [args.only] if args.only else MODES:
                # new hosts for each mode: what is left of the last mode's connection (B's
                # FIN sent again, A's answer) would take the next mode's airtime
                with two_hosts() as hosts:
                    outcomes[mode] = run_mode(hosts, link, mode, args.bytes, args.pings,
                                              registry, tmp, timing)
    except LinkbridgeError as exc:
        print(f"slow-queue: error: {exc}", file=sys.stderr)
        return 2
    if args.only:
        outcome = outcomes[args.only]
        print(f"--queue {args.only}: {outcome.goodput:.0f} bit/s, ping {outcome.rtt_ms:.0f} ms, "
              f"{outcome.repeats} repeats, intact {outcome.transfer.intact}, "
              f"{outcome.transfer.seconds:.1f} s")
        print("\n".join(air_lines(args.only, outcome, timing.radio)))
        return 0
    off, on = outcomes["off"], outcomes["on"]
    goodput_ratio = on.goodput / off.goodput if off.goodput else float("inf")
    rtt_ratio = on.rtt_ms / off.rtt_ms
    checks = [("repeats within a round trip", f"{off.repeats}", f"{on.repeats}", "",
               "0", on.repeats == 0),
              ("TCP goodput bit/s", f"{off.goodput:.0f}", f"{on.goodput:.0f}",
               f"{goodput_ratio:.2f}", f">= {GOODPUT_TARGET}", goodput_ratio >= GOODPUT_TARGET),
              ("ping RTT during it, ms", f"{off.rtt_ms:.0f}", f"{on.rtt_ms:.0f}",
               f"{rtt_ratio:.2f}", f"<= {RTT_TARGET}", rtt_ratio <= RTT_TARGET)]
    print(f"{link}, {args.bytes} bytes A -> B, {args.pings} pings during it, "
          f"round trip {round_trip:.2f} s")
    print(ceiling(timing))
    print(f"{'':28}{'off':>8}{'on':>8}{'on/off':>8}  target")
    for name, value_off, value_on, ratio, target, ok in checks:
        print(f"{name:28}{value_off:>8}{value_on:>8}{ratio:>8}  {target} "
              f"{'ok' if ok else 'MISS'}")
    for mode, outcome in outcomes.items():
        print(f"{mode}: transfer {'intact' if outcome.transfer.intact else 'INCOMPLETE'} in "
              f"{outcome.transfer.seconds:.1f} s, {len(outcome.rtts_ms)}/{outcome.pings_sent} "
              f"pings answered")
        print("\n".join(air_lines(mode, outcome, timing.radio)))
    intact = all(outcome.transfer.intact for outcome in outcomes.values())
    return 0 if intact and all(check[-1] for check in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
