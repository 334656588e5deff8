"""Pulling the serial device out and putting it back: the tunnel stays up and traffic resumes.

The "device" is a pty behind a stable path: unplugging closes the pty and removes the path (the
running linkbridge sees a hang-up, then ENOENT on reopen), replugging makes a new pty there.
"""

from __future__ import annotations

import time

from linkbridge.lab.probes import ping
from linkbridge.lab.run import tunnels_between
from linkbridge.lab.topology import OVERLAY, TwoHosts
from linkbridge.lab.uart import UartCable
from linkbridge.plugin.url import parse_link_url

OUTAGE = 2.5  # long enough for the reopen backoff to reach its 1 s cap
RESUME_LIMIT = 3.0


def seconds_until_ping_answers(lab: TwoHosts, limit: float) -> float | None:
    """Ping once every ~0.1 s until a reply comes; None if none did within `limit`."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if ping(lab.a, OVERLAY[1], count=1, interval=0.0, timeout=0.1).received:
            return time.monotonic() - start
    return None


def test_traffic_resumes_after_unplug_and_replug_without_restart(lab: TwoHosts) -> None:
    with UartCable(115200) as cable:
        with tunnels_between(lab, parse_link_url(f"serial:{cable.path_a}"),
                             parse_link_url(f"serial:{cable.path_b}")) as (side_a, side_b):
            assert seconds_until_ping_answers(lab, 5.0) is not None
            resumed: dict[str, float | None] = {}
            for side in ("a", "b"):
                cable.unplug(side)
                lost = ping(lab.a, OVERLAY[1], count=int(OUTAGE / 0.25), interval=0.15,
                            timeout=0.1)
                cable.replug(side)
                assert lost.received == 0
                resumed[side] = seconds_until_ping_answers(lab, 10.0)
            # The same two processes carried traffic before, during and after: no restart.
            alive = side_a.proc is not None and side_a.proc.poll() is None \
                and side_b.proc is not None and side_b.proc.poll() is None
        output_a, output_b = side_a.output(), side_b.output()
    assert alive, (output_a, output_b)
    for side, seconds in resumed.items():
        assert seconds is not None and seconds < RESUME_LIMIT, (side, resumed, output_a)
    for output in (output_a, output_b):
        assert output.count("device lost") == 1, output  # logged once per outage
        assert output.count("device back") == 1, output
    assert "'unplugged'" in output_a  # A's pings sent during its outage were counted drops
