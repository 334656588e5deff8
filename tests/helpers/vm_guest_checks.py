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
import io
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pyroute2 import IPRoute
from pyroute2 import config as pyroute2_config

from linkbridge.cli.main import main as linkbridge
from linkbridge.lab import netns
from linkbridge.lab.probes import ping, tcp_transfer
from linkbridge.lab.topology import OVERLAY, UNDERLAY, TwoHosts, two_hosts, unique_tag
from linkbridge.lab.uart import UartCable
from linkbridge.plugin.registry import LinkRegistry, get_plugin_manager
from linkbridge.plugin.url import parse_link_url
from linkbridge.tunnel.kernel.backend import ipip_tunnels
from linkbridge.tunnel.kernel.fou import Fou
from linkbridge.tunnel.kernel.state import namespace_dir

READY_TIMEOUT = 60.0  # TCG is slow
GUEST_MODULES = ("tun", "ipip", "fou", "slip", "sch_netem")  # loaded before the checks start
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
                    copy = tcp_transfer(server, address, client, 1_000_000, timeout=120.0)
                    figures[f"tcp_{label}"] = {"bytes": copy.received_bytes,
                                               "seconds": round(copy.seconds, 2),
                                               "mbit_per_s": round(copy.mbit_per_s, 2),
                                               "intact": copy.intact}
                    expect(copy.intact and copy.received_bytes == 1_000_000,
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


def check_slip_interop(figures: Figures) -> None:
    """A kernel SLIP interface (slattach on a pty) and linkbridge's serial: link ping each other."""
    if shutil.which("slattach") is None:
        raise CheckSkipped("slattach (Debian package net-tools) is not installed")
    with two_hosts() as hosts, UartCable(baud=115200) as cable:
        with IPRoute() as ipr:
            before = {msg.get_attr("IFLA_IFNAME") for msg in ipr.get_links()}
        slattach = subprocess.Popen(["slattach", "-L", "-p", "slip", "-s", "115200",
                                     cable.path_a], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
        try:
            deadline, device = time.monotonic() + 20, None
            with IPRoute() as ipr:
                while device is None and time.monotonic() < deadline:
                    device = slip_device(ipr, before)
                    time.sleep(0.2)
                expect(device is not None, "slattach made no SLIP interface")
                assert device is not None
                ipr.link("set", index=ipr.link_lookup(ifname=device)[0], net_ns_fd=hosts.a)
            with netns.inside(hosts.a), IPRoute() as ipr:
                index = ipr.link_lookup(ifname=device)[0]
                ipr.link("set", index=index, mtu=296, state="up")
                ipr.addr("add", index=index, address=OVERLAY[0], prefixlen=32)
                ipr.route("add", dst=f"{OVERLAY[1]}/32", oif=index)
            serial = ("up", "--link", f"serial:{cable.path_b}?baud=115200",
                      "--remote", OVERLAY[0], "--address", OVERLAY[1], "--mtu", "296")
            with running(hosts.b, *serial):
                for source, destination, label in ((hosts.a, OVERLAY[1], "kernel_to_linkbridge"),
                                                   (hosts.b, OVERLAY[0], "linkbridge_to_kernel")):
                    result = ping(source, destination, count=5, interval=0.05, timeout=3.0)
                    figures[label] = {"sent": result.sent, "received": result.received,
                                      "rtt_avg_ms": round(sum(result.rtts_ms) /
                                                          max(1, result.received), 1)}
                    expect(result.received == result.sent, f"ping {label}: {figures[label]}")
            figures["device"] = device
        finally:
            slattach.terminate()
            try:
                slattach.wait(10)
            except subprocess.TimeoutExpired:
                slattach.kill()
                slattach.wait()


# The netem cross-check: each case is a sim: configuration; the guest measures what tc netem
# does with the same parameters (from the sim plugin's netem_arguments), the host test computes
# what the sim model does with them and compares.
NETEM_CASES = {  # name: (sim URL, packets, seconds between packets)
    "random_loss": ("sim:?loss=5%&limit=100000", 60_000, 0.0),
    "gilbert_elliott": ("sim:?gemodel=5%,50%,50%,1%&limit=100000", 100_000, 0.0),
    # delayed packets are paced: a burst released at once queues behind itself in the
    # emulated guest and shows more delay than netem applied
    "delay_fixed": ("sim:?delay=20ms&limit=100000", 2_000, 0.0015),
    "delay_jitter": ("sim:?delay=20ms&jitter=5ms&distribution=normal&limit=100000", 3_000,
                     0.0015),
}
NETEM_PORT = 6000
SO_TIMESTAMPNS = 35  # socket option: kernel receive time of each datagram (CLOCK_REALTIME)
SO_RCVBUFFORCE = 33


def sim_url_config(url: str) -> Any:
    """The SimConfig a sim: URL describes (through the installed plugin)."""
    from linkbridge_sim.options import side_config

    _cls, options = LinkRegistry(get_plugin_manager()).wrapper_options(parse_link_url(url))
    return side_config(url, options)[0]


def tc(ns: str, *args: str) -> None:
    done = subprocess.run(["tc", *args], capture_output=True, text=True, check=False,
                          preexec_fn=lambda: netns.enter(ns))
    expect(done.returncode == 0, f"tc {' '.join(args)}: {done.stderr.strip()}")


def receive_timestamped(sock: socket.socket, arrivals: dict[int, int]) -> None:
    """Read what is queued: sequence number -> delay in ns (kernel receive time - send time)."""
    while True:
        try:
            data, ancillary, _flags, _addr = sock.recvmsg(256, socket.CMSG_SPACE(16))
        except BlockingIOError:
            return
        seq, sent_ns = struct.unpack_from("!Iq", data)
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanoseconds = struct.unpack("qq", value[:16])
                arrivals[seq] = seconds * 1_000_000_000 + nanoseconds - sent_ns



def udp_through_veth(hosts: TwoHosts, count: int,
                     interval: float = 0.0) -> tuple[int, list[int]]:
    """Send `count` datagrams A -> B over the veth, `interval` s apart; (received, delays in ns)."""
    with netns.inside(hosts.b):
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with netns.inside(hosts.a):
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with receiver, sender:
        receiver.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 * 1024 * 1024)
        receiver.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        receiver.bind((UNDERLAY[1], NETEM_PORT))
        receiver.setblocking(False)
        sender.connect((UNDERLAY[1], NETEM_PORT))
        arrivals: dict[int, int] = {}
        padding = bytes(52)
        for seq in range(count):
            sender.send(struct.pack("!Iq", seq, time.time_ns()) + padding)
            if interval:
                time.sleep(interval)
            if seq % 256 == 255:
                receive_timestamped(receiver, arrivals)
        quiet_until = time.monotonic() + 1.0
        while time.monotonic() < quiet_until:
            before = len(arrivals)
            time.sleep(0.05)
            receive_timestamped(receiver, arrivals)
            if len(arrivals) != before:
                quiet_until = time.monotonic() + 1.0
    return len(arrivals), list(arrivals.values())


def check_netem(figures: Figures) -> None:
    """Loss and delay of tc netem configured like each sim: case, measured in the kernel."""
    from linkbridge_sim.netem import netem_arguments

    with two_hosts() as hosts:
        received, delays = udp_through_veth(hosts, 2_000)  # also resolves ARP before netem
        expect(received == 2_000, f"lost {2_000 - received} packets without netem")
        baseline_ms = sum(delays) / len(delays) / 1e6
        figures["baseline_delay_ms"] = round(baseline_ms, 4)
        for case, (url, count, interval) in NETEM_CASES.items():
            arguments = netem_arguments(sim_url_config(url))
            tc(hosts.a, "qdisc", "replace", "dev", hosts.veth_a, "root", "netem", *arguments)
            try:
                received, delays = udp_through_veth(hosts, count, interval)
            finally:
                tc(hosts.a, "qdisc", "del", "dev", hosts.veth_a, "root")
            figures[case] = {"netem": arguments, "sent": count, "received": received,
                             "loss": (count - received) / count,
                             "mean_delay_ms": sum(delays) / max(1, len(delays)) / 1e6
                             - baseline_ms}


CHECKS: dict[str, Callable[[Figures], None]] = {
    "fou_pair": check_fou_pair,
    "mixed_pair": check_mixed_pair,
    "three_tunnels": check_three_tunnels,
    "slip_interop": check_slip_interop,
    "netem": check_netem,
}


def run_checks(names: Sequence[str]) -> list[dict[str, Any]]:
    results = []
    for name in names:
        figures: Figures = {}
        started = time.monotonic()
        ok, skipped, detail = True, False, ""
        try:
            CHECKS[name](figures)
        except CheckSkipped as exc:
            skipped, detail = True, str(exc)
        except CheckFailed as exc:
            ok, detail = False, str(exc)
        except Exception:
            ok, detail = False, traceback.format_exc()
        results.append({"name": name, "ok": ok, "detail": detail, "figures": figures,
                        "skipped": skipped,
                        "seconds": round(time.monotonic() - started, 1)})
        outcome = "skipped" if skipped else "ok" if ok else "FAILED"
        print(f"vm-check {name}: {outcome} {detail}", flush=True)
    return results


def main(argv: Sequence[str]) -> int:
    out, names = argv[0], list(argv[1:]) or list(CHECKS)
    pyroute2_config.default_communicate_timeout = 60  # its 2 s is too short under emulation
    results = run_checks(names)
    with open(out, "w") as file:
        json.dump(results, file, indent=2)
    return 0 if all(result["ok"] for result in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
