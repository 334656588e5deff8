"""Checks that need a stock kernel (fou, ipip, slip, netem), run inside the test VM.

One Python process runs them all (under TCG an interpreter start with pyroute2 costs ~30 s):
`linkbridge` commands that return run in-process through `cli.main`, long-running ones in
forked children that enter their namespace and report READY=1 like under systemd. Each check
records ok/detail/figures; the result list goes to the JSON file named on the command line,
where tests/vm/test_vm.py asserts on it from the host.

    python -m tests.helpers.vm_guest_checks OUT.json [CHECK...]
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pyroute2 import IPRoute
from pyroute2 import config as pyroute2_config

from linkbridge.cli import main as cli_main
from linkbridge.cli.main import main as linkbridge
from linkbridge.lab import netns
from linkbridge.lab.probes import ping, tcp_transfer
from linkbridge.lab.topology import OVERLAY, UNDERLAY, two_hosts, unique_tag
from linkbridge.lab.uart import UartCable
from linkbridge.tunnel.kernel.backend import ipip_tunnels
from linkbridge.tunnel.kernel.fou import Fou
from linkbridge.tunnel.kernel.state import namespace_dir
from tests.helpers.vm_cslip import check_cslip, slattach
from tests.helpers.vm_kiss import check_kiss_interop
from tests.helpers.vm_netem import check_netem
from tests.helpers.vm_offload import check_offload
from tests.helpers.vm_serial import check_uart_settings

READY_TIMEOUT = 60.0  # TCG is slow
MIXED_TRANSFER = 300_000  # bytes of TCP each way between the kernel and the userspace tunnel
# loaded before the checks start
GUEST_MODULES = ("tun", "ipip", "fou", "slip", "sch_netem", "sch_prio", "ax25", "mkiss")
Figures = dict[str, Any]


class CheckFailed(Exception):
    """A check's expectation did not hold; the message says which."""


class CheckSkipped(Exception):
    """A check cannot run in this guest (a tool is missing); the message says why."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def run_cli(ns: str, *argv: str) -> tuple[int, str, str]:
    """`linkbridge ARGV` in namespace `ns`, in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with netns.inside(ns), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = linkbridge(list(argv))
    return code, out.getvalue(), err.getvalue()


def cli_ok(ns: str, *argv: str) -> str:
    code, out, err = run_cli(ns, *argv)
    expect(code == 0, f"linkbridge {' '.join(argv)} exited {code}: {err.strip()}")
    return out.strip()


class Forked:
    """`linkbridge ARGV` in a forked child inside `ns`; `start()` waits for its READY=1."""

    def __init__(self, ns: str, argv: Sequence[str]) -> None:
        self.ns, self.argv = ns, list(argv)
        self.pid: int | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="lb-vm-", suffix=".log")  # noqa: SIM115

    def start(self) -> Forked:
        directory = tempfile.mkdtemp(prefix="lb-notify-")
        path = os.path.join(directory, "notify")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(path)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns into the checks
            code = 70
            try:
                notify.close()
                os.dup2(self.log.fileno(), 1)
                os.dup2(self.log.fileno(), 2)
                netns.enter(self.ns)
                os.environ["NOTIFY_SOCKET"] = path
                code = linkbridge(self.argv)
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        self.pid = pid
        try:
            deadline = time.monotonic() + READY_TIMEOUT
            while time.monotonic() < deadline:
                notify.settimeout(0.5)
                with contextlib.suppress(TimeoutError):
                    if b"READY=1" in notify.recv(4096):
                        return self
                done, _status = os.waitpid(pid, os.WNOHANG)
                if done:
                    self.pid = None
                    raise CheckFailed(f"linkbridge {' '.join(self.argv)} exited: {self.output()}")
            raise CheckFailed(f"linkbridge {' '.join(self.argv)} not ready: {self.output()}")
        finally:
            notify.close()
            os.unlink(path)
            os.rmdir(directory)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-2000:]

    def stop(self) -> None:
        if self.pid is None:
            return
        os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if os.waitpid(self.pid, os.WNOHANG)[0]:
                self.pid = None
                return
            time.sleep(0.1)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        self.pid = None


@contextlib.contextmanager
def running(ns: str, *argv: str) -> Iterator[Forked]:
    child = Forked(ns, argv)
    try:
        yield child.start()
    finally:
        child.stop()


def leftovers(ns: str) -> list[str]:
    """Kernel tunnel objects left in namespace `ns`: IPIP devices (but tunl0), FOU ports,
    routes through them, state files."""
    found = []
    with netns.inside(ns):
        with IPRoute() as ipr:
            found += [f"ipip device {name}" for name, _l, _r in ipip_tunnels(ipr)
                      if name != "tunl0"]
        with Fou() as fou:
            found += [f"FOU port {port.local}:{port.port}" for port in fou.ports()]
        state = namespace_dir()
        if state.exists():
            found += [f"state {path}" for path in state.iterdir()] or [f"state dir {state}"]
    return found


def fou_up(ns: str, local: str, remote: str, *extra: str) -> str:
    """A kernel tunnel in `ns` on ports 2001/2002 with a tunnel address; returns its name."""
    return cli_ok(ns, "up", "--backend", "fou", "--rx", "2001", "--tx", "2002",
                  "--remote", remote, "--address", local, "--mtu", "1400", *extra)


def udp_link(side: str) -> tuple[str, ...]:
    """`linkbridge link udp:` on host `side` toward the other host, serving ports 2001/2002."""
    peer = UNDERLAY[1] if side == "a" else UNDERLAY[0]
    return ("link", f"udp:{peer}:5555", "--rx", "2001", "--tx", "2002")


def check_fou_pair(figures: Figures) -> None:
    """Two namespaces, a kernel tunnel in each, joined by `linkbridge link udp:`; ping across."""
    with two_hosts() as hosts:
        try:
            name_a = fou_up(hosts.a, OVERLAY[0], OVERLAY[1])
            name_b = fou_up(hosts.b, OVERLAY[1], OVERLAY[0])
            with netns.inside(hosts.a), IPRoute() as ipr, Fou() as fou:
                link = ipr.get_links(ipr.link_lookup(ifname=name_a)[0])[0]
                data = link.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")
                figures["device"] = {
                    "name": name_a, "mtu": link.get_attr("IFLA_MTU"),
                    "encap_type": data.get_attr("IFLA_IPIP_ENCAP_TYPE"),
                    "encap_dport": data.get_attr("IFLA_IPIP_ENCAP_DPORT"),
                    "encap_sport": data.get_attr("IFLA_IPIP_ENCAP_SPORT"),
                    "fou_ports": [f"{p.local}:{p.port}/{p.ipproto}" for p in fou.ports()]}
            expect(figures["device"]["encap_dport"] == 2002, f"encap dport {figures['device']}")
            expect(figures["device"]["fou_ports"] == ["127.0.0.1:2001/4"],
                   f"FOU ports {figures['device']['fou_ports']}")
            with running(hosts.a, *udp_link("a")), running(hosts.b, *udp_link("b")):
                result = ping(hosts.a, OVERLAY[1], count=10, interval=0.05, timeout=3.0)
                figures["ping"] = {"sent": result.sent, "received": result.received,
                                   "rtt_avg_ms": round(sum(result.rtts_ms) /
                                                       max(1, result.received), 2)}
                expect(result.received == result.sent, f"ping lost packets: {figures['ping']}")
        finally:
            for ns in (hosts.a, hosts.b):
                run_cli(ns, "down", "--rx", "2001")
        for ns in (hosts.a, hosts.b):
            left = leftovers(ns)
            expect(not left, f"left behind in {ns}: {left}")
        figures["names"] = [name_a, name_b]


def check_mixed_pair(figures: Figures) -> None:
    """Kernel tunnel on A, userspace TUN on B, over the udp: link: ping and a checked TCP copy."""
    with two_hosts() as hosts:
        try:
            fou_up(hosts.a, OVERLAY[0], OVERLAY[1])
            userspace = ("up", "--link", f"udp:{UNDERLAY[0]}:5555", "--remote", OVERLAY[0],
                         "--address", OVERLAY[1], "--mtu", "1400")
            with running(hosts.a, *udp_link("a")), running(hosts.b, *userspace):
                result = ping(hosts.a, OVERLAY[1], count=10, interval=0.05, timeout=3.0)
                figures["ping"] = {"sent": result.sent, "received": result.received}
                expect(result.received == result.sent, f"ping lost packets: {figures['ping']}")
                for server, address, client, label in ((hosts.b, OVERLAY[1], hosts.a, "a_to_b"),
                                                       (hosts.a, OVERLAY[0], hosts.b, "b_to_a")):
                    copy = tcp_transfer(server, address, client, MIXED_TRANSFER, timeout=120.0)
                    figures[f"tcp_{label}"] = {"bytes": copy.received_bytes,
                                               "seconds": round(copy.seconds, 2),
                                               "mbit_per_s": round(copy.mbit_per_s, 2),
                                               "intact": copy.intact}
                    expect(copy.intact and copy.received_bytes == MIXED_TRANSFER,
                           f"TCP {label}: {figures[f'tcp_{label}']}")
        finally:
            run_cli(hosts.a, "down", "--rx", "2001")
        left = leftovers(hosts.a)
        expect(not left, f"left behind: {left}")


@contextlib.contextmanager
def namespace() -> Iterator[str]:
    name = f"lbK-{unique_tag()}"
    netns.create(name)
    try:
        with netns.inside(name), IPRoute() as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
        yield name
    finally:
        netns.remove(name)


def routes_to(ns: str, prefix: str) -> list[str]:
    with netns.inside(ns), IPRoute() as ipr:
        return [f"{r.get_attr('RTA_DST')}/{r['dst_len']}" for r in ipr.get_routes(family=2)
                if str(r.get_attr("RTA_DST") or "").startswith(prefix)]


def check_three_tunnels(figures: Figures) -> None:
    """Three kernel tunnels up, refused and rolled-back attempts, down in another order."""
    with namespace() as ns:
        first = cli_ok(ns, "up", "--backend", "fou", "--rx", "3001", "--tx", "3002",
                       "--remote", "10.7.1.0/24")
        second = cli_ok(ns, "up", "--backend", "fou", "--rx", "3011", "--tx", "3012",
                        "--remote", "10.7.2.0/24", "--host", "127.0.0.2", "--name", "kt2")
        third = cli_ok(ns, "up", "--backend", "fou", "3021", "3022", "10.7.3.3", "100",
                       "--host", "127.0.0.3")
        figures["names"] = [first, second, third]
        expect([first, second, third] == ["fou1", "kt2", "fou2"], f"names {figures['names']}")
        with netns.inside(ns), IPRoute() as ipr:
            mtu = ipr.get_links(ipr.link_lookup(ifname=third)[0])[0].get_attr("IFLA_MTU")
        expect(mtu == 100, f"positional MTU not applied: {mtu}")
        expect(len(routes_to(ns, "10.7.")) == 3, f"routes {routes_to(ns, '10.7.')}")

        code, _out, err = run_cli(ns, "up", "--backend", "fou", "--rx", "3031", "--tx", "3032",
                                  "--remote", "10.7.4.4")
        figures["host_taken"] = err.strip()
        expect(code == 1 and "--host 127.0.0.4" in err and "fou1" in err,
               f"taken loopback address not refused clearly: {code} {err!r}")

        with netns.inside(ns):
            blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with blocker:
            blocker.bind(("127.0.0.4", 3041))
            code, _out, err = run_cli(ns, "up", "--backend", "fou", "--rx", "3041", "--tx",
                                      "3042", "--remote", "10.7.5.5", "--host", "127.0.0.4")
        figures["rollback"] = err.strip()
        expect(code == 1 and "FOU receive port" in err and len(err.strip().splitlines()) == 1,
               f"port in use not reported in one line: {code} {err!r}")
        with netns.inside(ns), IPRoute() as ipr:
            names = [name for name, _l, _r in ipip_tunnels(ipr)]
        expect(sorted(names) == sorted(["tunl0", first, second, third]),
               f"rollback left a device: {names}")

        cli_ok(ns, "down", "kt2")
        cli_ok(ns, "down", "--rx", "3001")
        cli_ok(ns, "down", "3021", "3022", "10.7.3.3", "100")
        code, _out, err = run_cli(ns, "down", "fou1")
        figures["down_again"] = err.strip()
        expect(code == 1 and "no kernel tunnel named fou1" in err, f"second down: {err!r}")
        left = leftovers(ns) + [f"route {r}" for r in routes_to(ns, "10.7.")]
        expect(not left, f"left behind: {left}")


def slip_device(ipr: IPRoute, before: set[str]) -> str | None:
    """The SLIP interface that appeared since `before` (slattach names it slN)."""
    new = {msg.get_attr("IFLA_IFNAME") for msg in ipr.get_links()} - before
    return next((name for name in sorted(new) if name.startswith("sl")), None)


SLIP_MTU = 296
SLIP_TCP_BYTES = 30_000
# full-MTU UDP payloads made of the bytes SLIP must escape (END 0xC0, ESC 0xDB)
STUFFED = (b"\xc0" * (SLIP_MTU - 28), b"\xdb" * (SLIP_MTU - 28),
           b"\xc0\xdb" * ((SLIP_MTU - 28) // 2), b"\xdb\xdc\xdb\xdd\xc0" * 53 + b"\xdb\xdc\xc0")


def stuffed_datagrams(source: str, destination: str, address: str) -> dict[str, int]:
    """Send each STUFFED payload (at the full MTU) from namespace `source` to `address` in
    `destination` over the tunnel; count those that arrived byte for byte."""
    with netns.inside(destination):
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with netns.inside(source):
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    intact = 0
    with receiver, sender:
        receiver.bind((address, 7300))
        receiver.settimeout(5.0)
        for payload in STUFFED:
            sender.sendto(payload, (address, 7300))
            with contextlib.suppress(TimeoutError):
                intact += receiver.recv(4096) == payload
    return {"sent": len(STUFFED), "intact": intact, "bytes": SLIP_MTU}


def check_slip_interop(figures: Figures) -> None:
    """A kernel SLIP interface (slattach on a pty) and linkbridge's serial: link: pings, full-MTU
    payloads of END/ESC bytes and a checked TCP copy, each both ways."""
    if shutil.which("slattach") is None:
        raise CheckSkipped("slattach (Debian package net-tools) is not installed")
    with two_hosts() as hosts, UartCable(baud=115200) as cable, \
            slattach("slip", cable.path_a, hosts.a, mtu=SLIP_MTU) as device:
        serial = ("up", "--link", f"serial:{cable.path_b}?baud=115200",
                  "--remote", OVERLAY[0], "--address", OVERLAY[1], "--mtu", str(SLIP_MTU))
        with running(hosts.b, *serial):
            for source, destination, label in ((hosts.a, OVERLAY[1], "kernel_to_linkbridge"),
                                               (hosts.b, OVERLAY[0], "linkbridge_to_kernel")):
                result = ping(source, destination, count=5, interval=0.05, timeout=3.0)
                figures[label] = {"sent": result.sent, "received": result.received,
                                  "rtt_avg_ms": round(sum(result.rtts_ms) /
                                                      max(1, result.received), 1)}
                expect(result.received == result.sent, f"ping {label}: {figures[label]}")
            for source, destination, address, label in (
                    (hosts.a, hosts.b, OVERLAY[1], "kernel_to_linkbridge"),
                    (hosts.b, hosts.a, OVERLAY[0], "linkbridge_to_kernel")):
                got = stuffed_datagrams(source, destination, address)
                figures[f"stuffed_{label}"] = got
                expect(got["intact"] == got["sent"], f"END/ESC payloads {label}: {got}")
                copy = tcp_transfer(destination, address, source, SLIP_TCP_BYTES, timeout=60.0)
                figures[f"tcp_{label}"] = {"bytes": copy.received_bytes,
                                           "seconds": round(copy.seconds, 2),
                                           "intact": copy.intact}
                expect(copy.intact and copy.received_bytes == SLIP_TCP_BYTES,
                       f"TCP {label}: {figures[f'tcp_{label}']}")
        figures["device"] = device


CHECKS: dict[str, Callable[[Figures], None]] = {
    "fou_pair": check_fou_pair,
    "mixed_pair": check_mixed_pair,
    "three_tunnels": check_three_tunnels,
    "slip_interop": check_slip_interop,
    "netem": check_netem,  # tests/helpers/vm_netem.py; compared with sim: by tests/vm
    "uart_settings": check_uart_settings,  # tests/helpers/vm_serial.py
    "cslip": check_cslip,  # tests/helpers/vm_cslip.py: kernel cslip <-> linkbridge --compress vj
    "kiss_interop": check_kiss_interop,  # tests/helpers/vm_kiss.py
    "offload": check_offload,  # tests/helpers/vm_offload.py: TUN offloads on the stock kernel
}


# Guest seconds each check may take (under TCG, on a loaded 2-core host): a check over its
# budget is stopped and fails, so one slow check cannot push the suite past its 10 minutes.
DEFAULT_BUDGET = 45
BUDGETS = {"mixed_pair": 90, "slip_interop": 60, "netem": 150}


class OverBudget(Exception):
    """Raised inside a check by the alarm when its time budget ran out."""


def _over_budget(_signal: int, _frame: Any) -> None:
    raise OverBudget


def run_checks(names: Sequence[str]) -> list[dict[str, Any]]:
    results = []
    previous = signal.signal(signal.SIGALRM, _over_budget)
    for name in names:
        figures: Figures = {}
        started = time.monotonic()
        ok, skipped, detail = True, False, ""
        budget = BUDGETS.get(name, DEFAULT_BUDGET)
        signal.alarm(budget)
        try:
            CHECKS[name](figures)
        except CheckSkipped as exc:
            skipped, detail = True, str(exc)
        except CheckFailed as exc:
            ok, detail = False, str(exc)
        except OverBudget:
            ok, detail = False, f"stopped: over its time budget of {budget} s"
        except Exception:
            ok, detail = False, traceback.format_exc()
        finally:
            signal.alarm(0)
        results.append({"name": name, "ok": ok, "detail": detail, "figures": figures,
                        "skipped": skipped, "budget": budget,
                        "seconds": round(time.monotonic() - started, 1)})
        outcome = "skipped" if skipped else "ok" if ok else "FAILED"
        print(f"vm-check {name}: {outcome} {detail}", flush=True)
    signal.signal(signal.SIGALRM, previous)
    return results


def main(argv: Sequence[str]) -> int:
    out, names = argv[0], list(argv[1:]) or list(CHECKS)
    # every `linkbridge` run in this process (and in the tunnels it forks) shares one plugin
    # manager: each would read every installed distribution's entry points over 9p, under TCG
    # ~1 s a run, and the checks run the CLI some fifty times
    cli_main.get_plugin_manager = functools.cache(cli_main.get_plugin_manager)
    pyroute2_config.default_communicate_timeout = 60  # its 2 s is too short under emulation
    results = run_checks(names)
    with open(out, "w") as file:
        # compact: with `indent` json uses its pure-Python encoder, which takes ~15 s under
        # TCG for the netem arrivals (~5 MB)
        json.dump(results, file, separators=(",", ":"))
    return 0 if all(result["ok"] for result in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
