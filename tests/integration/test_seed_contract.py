"""The original tool's contract: the tunnel as raw IP packets on local UDP RX/TX ports.

Side A runs `linkbridge up RX TX REMOTE` (the original positional form) with an unchanged external
link program written for the original tool; side B runs `linkbridge tunnel` served by
`linkbridge link udp:...`, linkbridge's own link half.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from linkbridge.lab.probes import ping, tcp_transfer
from linkbridge.lab.processes import LinkbridgeProcess, spawn
from linkbridge.lab.topology import OVERLAY, UNDERLAY, TwoHosts

RX, TX, LINK_PORT = 2001, 2002, 6000
SEED_LINK = Path(__file__).parents[1] / "helpers" / "seed_link_program.py"


@contextlib.contextmanager
def external_link(ns_name: str, peer: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = spawn(ns_name, [sys.executable, str(SEED_LINK), str(RX), str(TX), str(LINK_PORT), peer],
                 stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"seed link ready"
        yield proc
    finally:
        proc.terminate()
        proc.wait(5)


def test_external_link_program_and_link_half(lab: TwoHosts) -> None:
    side_a = LinkbridgeProcess(lab.a, ["up", str(RX), str(TX), OVERLAY[1], "1400",
                                       "--address", OVERLAY[0]], "tunnel A (positional)")
    side_b = LinkbridgeProcess(lab.b, ["tunnel", "--rx", str(RX), "--tx", str(TX),
                                       "--remote", OVERLAY[0], "--address", OVERLAY[1]], "tunnel B")
    link_b = LinkbridgeProcess(lab.b, ["link", f"udp:{UNDERLAY[0]}:{LINK_PORT}", "--rx", str(RX),
                                       "--tx", str(TX)], "link B")
    with side_a, side_b, link_b, external_link(lab.a, UNDERLAY[1]):
        result = ping(lab.a, OVERLAY[1], count=5, interval=0.01)
        assert result.received == 5, (side_a.output(), side_b.output(), link_b.output())
        transfer = tcp_transfer(lab.b, OVERLAY[1], lab.a, 1_000_000)
        assert transfer.intact
        assert transfer.received_bytes == 1_000_000

