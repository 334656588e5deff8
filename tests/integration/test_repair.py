"""The loss-repair layer (`--repair`, docs/repair.md) between two lab hosts over `sim:` links
that lose frames: UDP datagrams A -> B, counted at B, plain beside ARQ and FEC; the figures
from the tunnels' status sockets."""

from __future__ import annotations

import contextlib
import threading

from linkbridge.datapath.repairing import RepairingEndpoint
from linkbridge.lab.probes import udp_stream
from linkbridge.lab.processes import LinkbridgeProcess
from linkbridge.lab.run import lab_tunnels
from linkbridge.lab.topology import OVERLAY, TwoHosts
from linkbridge.ops.status import collect_status
from linkbridge.ops.status_data import Repair
from linkbridge.plugin.conformance import Flow, free_port
from linkbridge.plugin.faults import numbered
from linkbridge.plugin.registry import LinkRegistry
from linkbridge.wire.drops import REPAIR_DUPLICATE

PORT = 5431
LOSSY = "sim:?loss=20%&seed=5&delay=20ms&rate=256kbit"


def datagrams(lab: TwoHosts, count: int, rate: float) -> set[int]:
    """Send `count` numbered UDP datagrams A -> B at `rate`/s; the numbers B received."""
    return set(udp_stream(lab.a, lab.b, OVERLAY[1], count, rate, 104, PORT, linger=1.5).delays)


def repair_figures(sides: tuple[LinkbridgeProcess, LinkbridgeProcess]) -> list[Repair]:
    """The repair figures of the lab's two tunnels (other tunnels may run on the machine)."""
    pids = {side.proc.pid for side in sides}
    return [layer.repair for tunnel in collect_status() if tunnel.pid in pids
            for layer in tunnel.link_side.stack() if layer.repair]


def test_arq_delivers_what_plain_loses(lab: TwoHosts, registry: LinkRegistry) -> None:
    with lab_tunnels(lab, LOSSY, registry=registry):
        plain = datagrams(lab, 200, 100)
    with lab_tunnels(lab, LOSSY, extra_args=["--repair", "arq"], registry=registry) as sides:
        repaired = datagrams(lab, 200, 100)
        figures = repair_figures(sides)
    assert len(plain) < 0.9 * 200  # 20% loss
    assert len(repaired) >= 0.97 * 200, (len(repaired), figures)  # plain: about 80%
    assert sum(f.retransmissions for f in figures) >= 200 * 0.1


def test_fec_repairs_without_a_round_trip(lab: TwoHosts, registry: LinkRegistry) -> None:
    with lab_tunnels(lab, LOSSY, extra_args=["--repair", "fec"], registry=registry) as sides:
        got = datagrams(lab, 600, 100)
        figures = repair_figures(sides)
    late = set(range(300, 600))  # once the receiver's loss report set the redundancy
    assert len(got & late) >= 0.97 * len(late), (len(got & late), figures)
    assert sum(f.repaired for f in figures) > 0
    assert sum(f.retransmissions for f in figures) == 0


def test_no_loss_costs_little(lab: TwoHosts, registry: LinkRegistry) -> None:
    clean = "sim:?seed=5&delay=20ms&rate=256kbit"
    for mode in ("arq", "fec"):
        with lab_tunnels(lab, clean, extra_args=["--repair", mode],
                         registry=registry) as sides:
            assert len(datagrams(lab, 100, 100)) == 100
            figures = repair_figures(sides)
        # nothing to repair: at most a spurious retransmission or two before the RTT is known
        assert sum(f.retransmissions + f.repaired + f.duplicates for f in figures) <= 4, mode


def test_sustained_traffic_over_udp_loses_nothing(registry: LinkRegistry) -> None:
    """The conformance suite's sustained two-way traffic (its Flow), through the layer over
    the in-tree udp: link: every packet arrives, in order, once."""
    port_a, port_b = free_port(), free_port()
    links = [registry.create_link(f"udp:127.0.0.1:{far}?bind=127.0.0.1:{near}")
             for near, far in ((port_a, port_b), (port_b, port_a))]
    with contextlib.ExitStack() as stack:
        for link in links:
            link.open()
            stack.callback(link.close)
        a, b = (RepairingEndpoint(link, "arq") for link in links)
        flows = [Flow(name, sender, receiver,
                      [numbered(i, bytes(4 + (i * seed) % 1000)) for i in range(2000)], 64)
                 for name, sender, receiver, seed in (("A -> B", a, b, 7), ("B -> A", b, a, 3))]
        start = threading.Event()
        threads = [threading.Thread(target=job, daemon=True) for flow in flows
                   for job in (flow.send_all, lambda f=flow: f.receive_all(start))]
        for thread in threads:
            thread.start()
        start.set()
        for thread in threads:
            thread.join(30)
    for flow in flows:
        assert flow.got == flow.packets, (flow.name, len(flow.got), flow.stalled, flow.error)
    # at most copies dropped (a retransmission whose acknowledgement was late): no loss
    assert set(a.counters.drops + b.counters.drops) <= {REPAIR_DUPLICATE}, (a.counters.drops,
                                                                              b.counters.drops)
