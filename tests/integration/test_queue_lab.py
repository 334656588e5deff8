"""The link-aware queue between two lab hosts over a half-duplex sim: radio with Dire Wolf's
TNC settings (a longer TXDELAY and 9600 bit/s, so that a run stays short): with `--queue off`
the kernel's second SYN (its 1 s timer fires before the first is answered) goes on the air and
reaches B; with `--queue on` it is dropped and counted, the transfer is intact, B's ACKs
wait in its queue while A has the channel (the radio says when it is ready), where newer ones
drop older ones, and the route to the peer carries the link's rto_min and initcwnd. The full
figures at 1200 bit/s are `python -m benchmarks slow-queue` (docs/queue.md)."""

from __future__ import annotations

from pathlib import Path

from pyroute2 import IPRoute

from benchmarks.slow_queue import repeats_within
from linkbridge.lab import netns
from linkbridge.lab.layers import tunnel_pair
from linkbridge.lab.probes import tcp_transfer
from linkbridge.lab.run import lab_tunnels
from linkbridge.lab.topology import OVERLAY, TwoHosts
from linkbridge.plugin.registry import LinkRegistry
from linkbridge.wire.drops import QUEUE_ACK_FILTERED, QUEUE_RETRANSMIT

LINK = ("sim:?duplex=half&rate=9600&txdelay=500ms&txtail=100ms&persist=63&slottime=100ms"
        "&slotwait=on&burst=64&framing=ax25&mtu=256&seed=5")
SOURCE = bytes(map(int, OVERLAY[0].split(".")))
SYN_WINDOW = 2.0  # s: under the link's estimated round trip (about 2.2 s)


def route_metrics(ns_name: str, destination: str) -> dict[str, int]:
    with netns.inside(ns_name), IPRoute() as ipr:
        routes = [route for route in ipr.get_routes(family=2)
                  if route.get_attr("RTA_DST") == destination]
    metrics = routes[0].get_attr("RTA_METRICS") if routes else None
    return dict(metrics["attrs"]) if metrics else {}


def run(lab: TwoHosts, registry: LinkRegistry, mode: str, pcap: Path
        ) -> tuple[bool, tuple[dict[str, int], dict[str, int]], dict[str, int]]:
    """Transfer 1000 bytes A -> B; whether it arrived intact, A's and B's drops, A's route
    metrics."""
    with lab_tunnels(lab, LINK, extra_args=("--queue", mode),
                     side_args=((), ("--pcap", str(pcap))), registry=registry) as (a, b):
        transfer = tcp_transfer(lab.b, OVERLAY[1], lab.a, 1000, timeout=20.0)
        assert a.proc is not None and b.proc is not None
        pair = tunnel_pair([a.proc.pid, b.proc.pid])
        assert pair is not None
        drops = tuple({reason: count for side in host.link_side.stack()
                       for reason, count in side.drops.items()} for host in pair)
        metrics = route_metrics(lab.a, OVERLAY[1])
    return transfer.intact, (drops[0], drops[1]), metrics


def test_the_queue_keeps_a_second_syn_off_the_air(lab: TwoHosts, registry: LinkRegistry,
                                                   tmp_path: Path) -> None:
    results = {mode: run(lab, registry, mode, tmp_path / f"{mode}.pcap") for mode in ("off", "on")}
    repeats = {mode: repeats_within(str(tmp_path / f"{mode}.pcap"), SOURCE, SYN_WINDOW)
               for mode in results}
    print(f"segments repeated at B within {SYN_WINDOW} s: {repeats}; A's drops: "
          f"{ {mode: result[1] for mode, result in results.items()} }")
    assert all(intact for intact, _drops, _metrics in results.values())
    assert repeats["off"] >= 1  # without the queue the duplicate SYN reaches B
    assert repeats["on"] == 0
    assert results["on"][1][0].get(QUEUE_RETRANSMIT, 0) >= 1
    assert QUEUE_RETRANSMIT not in results["off"][1][0]
    assert results["on"][1][1].get(QUEUE_ACK_FILTERED, 0) >= 1
    on_metrics, off_metrics = results["on"][2], results["off"][2]
    assert on_metrics["RTAX_RTO_MIN"] >= 2000 and on_metrics["RTAX_LOCK"] == 1 << 13
    assert on_metrics["RTAX_INITCWND"] >= 2
    assert "RTAX_RTO_MIN" not in off_metrics
