"""TUN offloads on the stock Debian kernel (6.1: TSO but no USO on a TUN), inside the test VM.

The kernel must refuse the full set (CSUM|TSO4|TSO6|USO4|USO6) where it predates USO (6.2) and
take it without USO on the retry; two tunnels with `--offload on` then agree on what both
kernels take and carry TCP both ways, with a content check, as super-packets in chunks.
"""

from __future__ import annotations

import ast
import os
import re

from linkbridge.lab.probes import tcp_transfer
from linkbridge.lab.topology import OVERLAY, UNDERLAY, two_hosts
from linkbridge.tunnel.tun import TunEndpoint
from linkbridge.wire.offload import ALL_OFFLOADS, TCP_OFFLOADS, flag_names

TRANSFER = 1_000_000  # bytes each way (~16 super-packets of 64 KB; ~6 s under TCG)
_DEVICE = re.compile(r"counters lbo0: (\{.*\})$", re.MULTILINE)


def expected_flags() -> int:
    """What this kernel should accept: USO on a TUN came with Linux 6.2."""
    major, minor = (int(part) for part in os.uname().release.split(".")[:2])
    return ALL_OFFLOADS if (major, minor) >= (6, 2) else TCP_OFFLOADS


def check_offload(figures: dict[str, object]) -> None:
    from tests.helpers.vm_guest_checks import Forked, expect

    tun = TunEndpoint("lbprobe0", vnet_hdr=True)
    try:
        figures["kernel"], figures["accepted"] = os.uname().release, flag_names(tun.accepted)
        expect(tun.accepted == expected_flags(),
               f"kernel {os.uname().release} accepted {flag_names(tun.accepted)}, "
               f"expected {flag_names(expected_flags())}")
    finally:
        tun.close()
    with two_hosts() as hosts:
        sides = []
        for ns, local, remote, peer in ((hosts.a, OVERLAY[0], OVERLAY[1], UNDERLAY[1]),
                                        (hosts.b, OVERLAY[1], OVERLAY[0], UNDERLAY[0])):
            sides.append(Forked(ns, ["up", "--name", "lbo0", "--link", f"udp:{peer}:5556",
                                     "--remote", remote, "--address", local,
                                     "--offload", "on"]))
        try:
            for side in sides:
                side.start()
            for server, address, client, label in ((hosts.b, OVERLAY[1], hosts.a, "a_to_b"),
                                                   (hosts.a, OVERLAY[0], hosts.b, "b_to_a")):
                copy = tcp_transfer(server, address, client, TRANSFER, timeout=60.0)
                figures[f"tcp_{label}_mbit"] = round(copy.mbit_per_s, 1)
                expect(copy.intact and copy.received_bytes == TRANSFER,
                       f"TCP {label}: {copy.received_bytes} bytes, intact {copy.intact}")
        finally:
            for side in sides:
                side.stop()
        for label, side in zip("ab", sides, strict=True):
            found = _DEVICE.findall(side.output())
            expect(bool(found), f"no counters from side {label}: {side.output()}")
            counters = ast.literal_eval(found[-1])
            offload = counters.get("offload", {})
            figures[f"offload_{label}"] = offload
            expect(counters["drops"] == {}, f"side {label} dropped: {counters['drops']}")
            expect(offload.get("enabled_flags") == expected_flags(),
                   f"side {label} turned on {flag_names(offload.get('enabled_flags', 0))}")
            expect(offload.get("super_packets_read", 0) > 0
                   and offload.get("super_packets_written", 0) > 0,
                   f"side {label} moved no super-packets: {offload}")
