"""VJ interop in the VM: the stock kernel's compressed SLIP (`slattach -p cslip`) on one end of a
pty pair, linkbridge `serial:` with `--compress vj` on the other.

TCP timestamps are off in both lab hosts (VJ compresses nothing whose TCP options change).
Pings cross both ways, then a TCP transfer each way with a content check; the kernel's
compressed counters (/proc/net/dev, what `ip -s -s link` shows) must rise in both directions
while its rx_dropped stays put and its TcpInCsumErrors stays 0, and linkbridge's VJ layer
must have compressed and rebuilt packets without a drop.
"""

from __future__ import annotations

import ast
import contextlib
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

from pyroute2 import IPRoute

from linkbridge.lab import netns
from linkbridge.lab.probes import ping, tcp_transfer
from linkbridge.lab.topology import OVERLAY, two_hosts
from linkbridge.lab.uart import UartCable
from tests.helpers.commands import stop
from tests.helpers.namespace_state import snmp_counters

BAUD = 115200
MTU = 296  # the kernel SLIP default
TRANSFER = 20_000  # bytes each way: a few seconds at 115200 baud
_COUNTERS = re.compile(r"counters vj\+\S+: (\{.*\})$", re.MULTILINE)


def kernel_figures(ns: str, device: str) -> dict[str, int]:
    """The SLIP device's rx_dropped and compressed counters, and TcpInCsumErrors, in `ns`."""
    with netns.inside(ns), open("/proc/net/dev") as file:
        fields = next(line.split(":", 1)[1].split() for line in file
                      if line.strip().startswith(f"{device}:"))
    csum_errors = snmp_counters(ns)["Tcp"].get("InCsumErrors", 0)
    return {"rx_dropped": int(fields[3]), "rx_compressed": int(fields[6]),
            "tx_compressed": int(fields[15]), "tcp_in_csum_errors": csum_errors}


def timestamps_off(*namespaces: str) -> None:
    for ns in namespaces:
        with netns.inside(ns), open("/proc/sys/net/ipv4/tcp_timestamps", "w") as file:
            file.write("0")


@contextlib.contextmanager
def slattach(protocol: str, path: str, ns: str, mtu: int = MTU) -> Iterator[str]:
    """`slattach -p PROTOCOL` on the tty `path`: its SLIP device moved into `ns`, up with
    OVERLAY[0] and a route to OVERLAY[1]; yields the device name, stops slattach on exit."""
    from tests.helpers.vm_guest_checks import expect, slip_device

    with IPRoute() as ipr:
        before = {msg.get_attr("IFLA_IFNAME") for msg in ipr.get_links()}
    process = subprocess.Popen(["slattach", "-L", "-p", protocol, "-s", str(BAUD), path],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline, device = time.monotonic() + 20, None
        with IPRoute() as ipr:
            while device is None and time.monotonic() < deadline:
                device = slip_device(ipr, before)
                time.sleep(0.2)
            expect(device is not None, f"slattach -p {protocol} made no SLIP interface")
            assert device is not None
            ipr.link("set", index=ipr.link_lookup(ifname=device)[0], net_ns_fd=ns)
        with netns.inside(ns), IPRoute() as ipr:
            index = ipr.link_lookup(ifname=device)[0]
            ipr.link("set", index=index, mtu=mtu, state="up")
            ipr.addr("add", index=index, address=OVERLAY[0], prefixlen=32)
            ipr.route("add", dst=f"{OVERLAY[1]}/32", oif=index)
        yield device
    finally:
        stop(process)


def check_cslip(figures: dict[str, Any]) -> None:
    from tests.helpers.vm_guest_checks import CheckSkipped, expect, running

    if shutil.which("slattach") is None:
        raise CheckSkipped("slattach (Debian package net-tools) is not installed")
    with two_hosts() as hosts, UartCable(baud=BAUD) as cable:
        timestamps_off(hosts.a, hosts.b)
        with slattach("cslip", cable.path_a, hosts.a) as device:
            start = kernel_figures(hosts.a, device)
            serial = ("up", "--link", f"serial:{cable.path_b}?baud={BAUD}", "--remote",
                      OVERLAY[0], "--address", OVERLAY[1], "--mtu", str(MTU),
                      "--compress", "vj")
            with running(hosts.b, *serial) as child:
                for source, destination, label in ((hosts.a, OVERLAY[1], "ping_kernel_to_lb"),
                                                   (hosts.b, OVERLAY[0], "ping_lb_to_kernel")):
                    result = ping(source, destination, count=5, interval=0.05, timeout=3.0)
                    figures[label] = f"{result.received}/{result.sent}"
                    expect(result.received == result.sent, f"{label}: {figures[label]}")
                for server, address, client, label in (
                        (hosts.b, OVERLAY[1], hosts.a, "tcp_kernel_to_lb"),
                        (hosts.a, OVERLAY[0], hosts.b, "tcp_lb_to_kernel")):
                    transfer = tcp_transfer(server, address, client, TRANSFER, timeout=60)
                    figures[label] = {"bytes": transfer.received_bytes,
                                      "seconds": round(transfer.seconds, 2),
                                      "intact": transfer.intact}
                    expect(transfer.intact and transfer.received_bytes == TRANSFER,
                           f"{label}: {figures[label]}")
            end = kernel_figures(hosts.a, device)
            figures["kernel"] = {key: end[key] - start[key] for key in end}
            figures["kernel"]["tcp_in_csum_errors"] = end["tcp_in_csum_errors"]
            kernel = figures["kernel"]
            expect(kernel["rx_compressed"] > 10 and kernel["tx_compressed"] > 10,
                   f"the kernel's compressed counters did not rise both ways: {kernel}")
            expect(kernel["rx_dropped"] == 0, f"the kernel dropped frames: {kernel}")
            expect(kernel["tcp_in_csum_errors"] == 0, f"TCP checksum errors: {kernel}")
            found = _COUNTERS.findall(child.output())
            expect(bool(found), f"no vj counters in linkbridge's log: {child.output()}")
            layer = ast.literal_eval(found[-1])
            compress = layer["compress"]
            figures["linkbridge"] = {"tx": compress["tx"], "rx": compress["rx"],
                                     "drops": layer["drops"]}
            expect(layer["drops"] == {}, f"linkbridge dropped frames: {layer['drops']}")
            expect(compress["tx"]["compressed"] > 10 and compress["rx"]["compressed"] > 10,
                   f"linkbridge compressed too little: {figures['linkbridge']}")
            figures["device"] = device
