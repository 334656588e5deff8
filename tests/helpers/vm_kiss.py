"""The KISS interop check, run in the test VM: Linux's own AX.25 stack against `kiss:`.

`kissattach` (Debian's ax25-tools) puts the mkiss line discipline on one end of a paced pty
pair, with a generated axports file bound over /etc/ax25/axports: a kernel AX.25 interface in
the guest's initial namespace (AX.25 works only there). `linkbridge up --link kiss:` in AX.25
mode runs on the other end, in a namespace of its own. Pings both ways and a TCP transfer both
ways with a content check, every payload full of FEND (0xC0) and FESC (0xDB) bytes at the full
MTU; the kernel resolves linkbridge's address with AX.25 ARP (PID 0xCD), which the link
answers, and mkiss tries its SMACK and FlexNet CRC frames first, which the link accepts.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

from pyroute2 import IPRoute

from linkbridge.lab import netns
from linkbridge.lab.probes import echo_request
from linkbridge.lab.topology import OVERLAY, unique_tag
from linkbridge.lab.uart import UartCable

AXPORTS = "/etc/ax25/axports"
PORT_NAME = "lbk"
KERNEL_CALL, LINKBRIDGE_CALL = "N0CALL-1", "LB0-2"
MTU = 1024  # the axports paclen: the AX.25 interface's MTU, and the tunnel's
BAUD = 460800
TCP_BYTES = 48_000
TCP_PORT = 5301


def heavy(size: int, seed: int = 1) -> bytes:
    """`size` bytes, every other one FEND or FESC (KISS escapes each), the rest varied."""
    mixed = bytearray((hashlib.sha256(seed.to_bytes(4, "big")).digest() * (size // 32 + 1))[:size])
    mixed[0::2] = (bytes((0xC0, 0xDB)) * size)[:(size + 1) // 2]
    return bytes(mixed)


def inside(ns: str | None) -> contextlib.AbstractContextManager[None]:
    return netns.inside(ns) if ns else contextlib.nullcontext()


def echo(ns: str | None, destination: str, count: int, size: int,
         timeout: float = 5.0) -> tuple[int, list[float]]:
    """Echo requests of `size` bytes of IP (heavy payload); replies whose payload came back
    intact, and their round-trip times in ms."""
    payload = heavy(size - 28, seed=count)
    with inside(ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    intact, rtts = 0, []
    ident = os.getpid() & 0xFFFF
    with sock:
        for seq in range(count):
            start = time.monotonic()
            sock.sendto(echo_request(ident, seq, payload), (destination, 0))
            while (left := start + timeout - time.monotonic()) > 0:
                sock.settimeout(left)
                try:
                    packet = sock.recv(65535)
                except TimeoutError:
                    break
                header = (packet[0] & 0x0F) * 4
                icmp = packet[header:]
                if icmp[0] == 0 and int.from_bytes(icmp[4:6], "big") == ident \
                        and int.from_bytes(icmp[6:8], "big") == seq:
                    if icmp[8:] == payload:
                        intact += 1
                        rtts.append(round((time.monotonic() - start) * 1000, 1))
                    break
    return intact, rtts


def transfer(server_ns: str | None, address: str, client_ns: str | None,
             size: int, timeout: float = 60.0) -> dict[str, Any]:
    """Send `size` heavy bytes over TCP from client_ns to address in server_ns; check them."""
    data = heavy(size, seed=size)
    with inside(server_ns):
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with inside(client_ns):
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    received = bytearray()

    def serve() -> None:
        connection, _peer = server.accept()
        with connection:
            connection.settimeout(timeout)
            while chunk := connection.recv(65536):
                received.extend(chunk)

    with server, client:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((address, TCP_PORT))
        server.listen(1)
        server.settimeout(timeout)
        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        start = time.monotonic()
        client.settimeout(timeout)
        client.connect((address, TCP_PORT))
        client.sendall(data)
        client.shutdown(socket.SHUT_WR)
        thread.join(timeout)
        seconds = time.monotonic() - start
    return {"bytes": len(received), "seconds": round(seconds, 2), "intact": received == data}


@contextlib.contextmanager
def bound_over(path: str, content: str) -> Iterator[None]:
    """`content` in a file bound over `path` (the guest's files are read-only) until exit."""
    with tempfile.NamedTemporaryFile("w", suffix=".axports", delete=False) as file:
        file.write(content)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    subprocess.run(["mount", "--bind", file.name, path], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run(["umount", path], check=False, capture_output=True)
        os.unlink(file.name)


@contextlib.contextmanager
def writable_lock_dir() -> Iterator[None]:
    """kissattach locks its tty in /var/lock: give it a writable one if the guest's is not."""
    lock_dir = os.path.realpath("/var/lock")
    if os.access(lock_dir, os.W_OK):
        yield
        return
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(["mount", "--bind", scratch, lock_dir], check=True, capture_output=True)
        try:
            yield
        finally:
            subprocess.run(["umount", lock_dir], check=False, capture_output=True)


def daemons_on(tty: str) -> list[int]:
    """Pids of the kissattach daemons attached to `tty`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                with open(f"/proc/{entry}/cmdline", "rb") as file:
                    argv = file.read().split(b"\0")
                if argv and argv[0].endswith(b"kissattach") and tty.encode() in argv:
                    found.append(int(entry))
    return found


def ax_devices() -> set[str]:
    with IPRoute() as ipr:
        return {str(link.get_attr("IFLA_IFNAME")) for link in ipr.get_links()
                if str(link.get_attr("IFLA_IFNAME")).startswith("ax")}


@contextlib.contextmanager
def kissattach(tty: str) -> Iterator[str]:
    """A kernel AX.25 interface on `tty` (kissattach PORT_NAME); yields its name."""
    before = ax_devices()
    done = subprocess.run(["kissattach", "-m", str(MTU), tty, PORT_NAME], capture_output=True,
                          text=True, timeout=30, check=False)
    try:
        if done.returncode:
            raise RuntimeError(f"kissattach exited {done.returncode}: {done.stderr.strip()}")
        deadline, device = time.monotonic() + 10, None
        while device is None and time.monotonic() < deadline:
            device = next(iter(sorted(ax_devices() - before)), None)
            time.sleep(0.1)
        if device is None:
            raise RuntimeError(f"kissattach made no AX.25 interface: {done.stdout.strip()}")
        yield device
    finally:
        for pid in daemons_on(tty):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while daemons_on(tty) and time.monotonic() < deadline:
            time.sleep(0.1)


def check_kiss_interop(figures: dict[str, Any]) -> None:
    """kissattach (kernel AX.25) on one end of a pty pair, `linkbridge up --link kiss:` in AX.25
    mode on the other: heavy full-MTU pings and TCP both ways."""
    from tests.helpers.vm_guest_checks import running  # that module registers this check

    if shutil.which("kissattach") is None:
        raise RuntimeError("kissattach (Debian package ax25-tools) is not installed; "
                           "./run.sh test installs it")
    ns = f"lbX-{unique_tag()}"
    netns.create(ns)
    axports = f"{PORT_NAME} {KERNEL_CALL} {BAUD} {MTU} 2 linkbridge KISS interop check\n"
    try:
        with UartCable(BAUD) as cable, bound_over(AXPORTS, axports), writable_lock_dir(), \
                kissattach(cable.path_a) as device:
            with IPRoute() as ipr:
                index = ipr.link_lookup(ifname=device)[0]
                ipr.link("set", index=index, mtu=MTU, state="up")
                ipr.addr("add", index=index, address=OVERLAY[0], prefixlen=32)
                ipr.route("add", dst=f"{OVERLAY[1]}/32", oif=index)
            with netns.inside(ns), IPRoute() as ipr:
                ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
            url = (f"kiss:{cable.path_b}?baud={BAUD}&mode=ax25&call={LINKBRIDGE_CALL}"
                   f"&peer={KERNEL_CALL}&arp={OVERLAY[1]}&mtu={MTU}")
            with running(ns, "up", "--link", url, "--remote", OVERLAY[0], "--address",
                         OVERLAY[1], "--mtu", str(MTU)) as tunnel:
                for source, destination, label in ((None, OVERLAY[1], "kernel_to_linkbridge"),
                                                   (ns, OVERLAY[0], "linkbridge_to_kernel")):
                    intact, rtts = echo(source, destination, 4, MTU)
                    figures[f"ping_{label}"] = {"sent": 4, "intact": intact, "rtt_ms": rtts}
                    if intact != 4:
                        raise RuntimeError(f"ping {label}: {figures[f'ping_{label}']}; "
                                           f"linkbridge: {tunnel.output()}")
                for server, address, client, label in ((ns, OVERLAY[1], None,
                                                        "kernel_to_linkbridge"),
                                                       (None, OVERLAY[0], ns,
                                                        "linkbridge_to_kernel")):
                    result = transfer(server, address, client, TCP_BYTES)
                    figures[f"tcp_{label}"] = result
                    if not (result["intact"] and result["bytes"] == TCP_BYTES):
                        raise RuntimeError(f"TCP {label}: {result}")
            counters = [line.split(": ", 2)[-1] for line in tunnel.output().splitlines()
                        if "counters kiss:" in line]
            figures["device"], figures["linkbridge_link_counters"] = device, counters
            if not any("arp_answered" in line for line in counters):
                raise RuntimeError(f"the kernel's AX.25 ARP was not answered: {counters}")
    finally:
        netns.remove(ns)
