"""Long-running tunnels on real TUN devices in namespaces: hooks, link liveness and keepalives,
waiting for a serial device, retrying a broken tunnel of a config file, reload by SIGHUP."""

from __future__ import annotations

import base64
import ctypes
import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from linkbridge_sim.medium import DEFAULT_PORT, query_stats
from pyroute2 import IPRoute

from linkbridge.lab import netns
from linkbridge.lab.probes import PingResult, ping
from linkbridge.lab.processes import LinkbridgeProcess, spawn
from linkbridge.lab.run import TUN_NAME, lab_tunnels
from linkbridge.lab.topology import OVERLAY, UNDERLAY, TwoHosts
from linkbridge.lab.uart import UartCable
from linkbridge.ops.keys import new_private_key, public_key_of
from linkbridge.plugin.registry import LinkRegistry
from linkbridge.wire.frames import KEEPALIVE_FRAME
from tests.helpers.commands import run_in, status_json
from tests.helpers.namespace_state import devices
from tests.helpers.ping_stream import ping_stream
from tests.helpers.waiting import wait_for

SYS_TGKILL = 234  # x86-64: signal one thread of a process
NOBODY = pwd.getpwnam("nobody").pw_uid
# written aside, then renamed: a test that sees the file sees all of it
HOOK = ('env | grep ^LINKBRIDGE_ | sort > "{dir}/.$LINKBRIDGE_EVENT" && '
        'mv "{dir}/.$LINKBRIDGE_EVENT" "{dir}/$LINKBRIDGE_EVENT-$LINKBRIDGE_DEVICE"')


def udp_side(lab: TwoHosts, me: int, port: int = 47100, name: str = "lblr",
             extra: tuple[str, ...] = ()) -> LinkbridgeProcess:
    """One end of a udp: tunnel between the lab hosts (A: me=0, B: me=1)."""
    ns_name = (lab.a, lab.b)[me]
    return LinkbridgeProcess(ns_name, ["up", "--link", f"udp:{UNDERLAY[1 - me]}:{port}",
                                       "--address", OVERLAY[me], "--remote", OVERLAY[1 - me],
                                       "--name", name, *extra], "AB"[me])


def run_in_input(ns_name: str, text: str, *args: str) -> str:
    """`linkbridge ARGS` in the namespace with `text` on stdin; its output."""
    proc = spawn(ns_name, [sys.executable, "-m", "linkbridge", *args], stdin=subprocess.PIPE,
                 stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(text, timeout=30)
    assert proc.returncode == 0
    return str(out)


def tunnel_of(proc: LinkbridgeProcess, device: str) -> dict[str, Any] | None:
    assert proc.proc is not None
    return next((doc for doc in status_json()
                 if doc["pid"] == proc.proc.pid and doc["device"] == device), None)


def link_state(proc: LinkbridgeProcess, device: str = "lblr") -> str | None:
    doc = tunnel_of(proc, device)
    return None if doc is None else str(doc["link_state"])


def hook_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


def test_hooks_run_with_their_variables(lab: TwoHosts, tmp_path: Path, run_dir: object) -> None:
    hook = HOOK.format(dir=tmp_path)
    hooks = ("--on-up", hook, "--on-down", hook, "--on-link-up", hook, "--on-link-down", hook,
             "--keepalive", "0.3")
    side_a, side_b = udp_side(lab, 0, extra=hooks), udp_side(lab, 1, extra=("--keepalive", "0.3"))
    with side_a, side_b:
        up = hook_env(tmp_path / "up-lblr")
        assert up["LINKBRIDGE_DEVICE"] == "lblr"
        assert up["LINKBRIDGE_ADDRESSES"] == f"{OVERLAY[0]}/32"
        assert up["LINKBRIDGE_ROUTES"] == f"{OVERLAY[1]}/32"
        assert up["LINKBRIDGE_LINK"] == f"udp:{UNDERLAY[1]}:47100"
        assert up["LINKBRIDGE_REASON"] == "started"
        wait_for(lambda: (tmp_path / "link-up-lblr").exists(), 10, "the link-up hook")
        assert hook_env(tmp_path / "link-up-lblr")["LINKBRIDGE_LINK_STATE"] == "up"
        assert ping(lab.a, OVERLAY[1], count=3, interval=0.01).received == 3
        assert side_b.stop() == 0
        wait_for(lambda: (tmp_path / "link-down-lblr").exists(), 10, "the link-down hook")
        down = hook_env(tmp_path / "link-down-lblr")
        assert down["LINKBRIDGE_LINK_STATE"] == "down"  # stale runs no hook
        assert down["LINKBRIDGE_REASON"].startswith("no frame for ")
        assert side_a.stop() == 0
    assert hook_env(tmp_path / "down-lblr")["LINKBRIDGE_REASON"] == "stopped by SIGTERM"
    assert "lblr" not in devices(lab.a)


@pytest.mark.parametrize(("hook", "extra", "message"), [
    ("echo partly done; exit 4", (), "on-up hook failed (exit code 4)"),
    ("sleep 60", ("--hook-timeout", "1"), "on-up hook failed (killed after running too long)"),
])
def test_failing_or_hanging_on_up_hook_removes_the_tunnel(
        lab: TwoHosts, tmp_path: Path, hook: str, extra: tuple[str, ...], message: str) -> None:
    down = HOOK.format(dir=tmp_path)
    started = time.monotonic()
    done = run_in(lab.a, "up", "--rx", "2001", "--tx", "2002", "--remote", "198.19.70.0/24",
                  "--name", "lbhook", "--on-up", hook, "--on-down", down, *extra)
    assert time.monotonic() - started < 15
    assert done.returncode == 1
    assert f"linkbridge: error: lbhook: {message}; tunnel removed" in done.stderr
    assert "lbhook" not in devices(lab.a)
    # the on-down hook undoes whatever the on-up hook did before it failed
    assert hook_env(tmp_path / "down-lbhook")["LINKBRIDGE_REASON"] == "on-up hook failed"


def test_sigterm_during_a_hook_stops_hook_and_tunnel(lab: TwoHosts, tmp_path: Path) -> None:
    pid_file = tmp_path / "hook.pid"
    side = LinkbridgeProcess(lab.a, [
        "up", "--rx", "2001", "--tx", "2002", "--remote", "198.19.70.0/24", "--name", "lbterm",
        "--on-up", f'echo $$ > "{pid_file}"; sleep 30'], "A")
    side.launch()
    wait_for(lambda: pid_file.exists() and pid_file.read_text().endswith("\n"), 10,
             "the on-up hook")
    hook = int(pid_file.read_text())
    assert side.stop() == 0
    with pytest.raises(ProcessLookupError):
        os.kill(hook, 0)
    assert "lbterm" not in devices(lab.a)


def test_a_sigterm_taken_by_another_thread_stops_the_hook_at_once(lab: TwoHosts,
                                                                   tmp_path: Path) -> None:
    """The kernel may hand a process's SIGTERM to any of its threads: Python then runs the
    handler only when the main thread next runs Python code. A SIGTERM sent to one of the
    tunnel's other threads while its main thread waits for a 30 s on-up hook (timeout 60 s)
    stops hook and tunnel within 2 s."""
    pid_file = tmp_path / "hook.pid"
    side = LinkbridgeProcess(lab.a, [
        "up", "--rx", "2001", "--tx", "2002", "--remote", "198.19.70.0/24", "--name", "lbthr",
        "--hook-timeout", "60", "--on-up", f'echo $$ > "{pid_file}"; sleep 30'], "A")
    side.launch()
    assert side.proc is not None
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text().endswith("\n"), 10,
                 "the on-up hook")
        hook = int(pid_file.read_text())
        others = [int(task) for task in os.listdir(f"/proc/{side.proc.pid}/task")
                  if int(task) != side.proc.pid]
        assert others, "the tunnel runs no thread beside its main one"
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.syscall(SYS_TGKILL, side.proc.pid, others[0], signal.SIGTERM) == 0
        started = time.monotonic()
        assert side.proc.wait(10) == 0
        assert time.monotonic() - started < 2.0
    finally:
        side.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(hook, 0)
    assert "lbthr" not in devices(lab.a)


def test_hooks_run_as_the_user_root_was_dropped_to(lab: TwoHosts, run_dir: object) -> None:
    with tempfile.TemporaryDirectory() as directory:
        os.chmod(directory, 0o777)
        side = LinkbridgeProcess(lab.a, [
            "up", "--rx", "2001", "--tx", "2002", "--remote", "198.19.70.0/24", "--name",
            "lbusr", "--user", "nobody", "--on-up", f'id -u > "{directory}/up"',
            "--on-down", f'id -u > "{directory}/down"'], "A")
        with side:
            assert Path(directory, "up").read_text().strip() == str(NOBODY)
            assert side.stop() == 0
        assert Path(directory, "down").read_text().strip() == str(NOBODY)
    assert "lbusr" not in devices(lab.a)


def test_hooks_refused_from_a_file_others_can_write(lab: TwoHosts, tmp_path: Path) -> None:
    path = tmp_path / "hooks.toml"
    path.write_text('rx = 2001\ntx = 2002\nremote = "198.19.70.0/24"\non_up = "exit 7"\n')
    path.chmod(0o666)
    done = run_in(lab.a, "up", "-c", str(path))
    assert done.returncode == 2
    assert done.stderr.strip() == (f"linkbridge: error: {path}: hooks refused: the file is "
                                   f"writable by group or others (chmod go-w {path})")
    path.chmod(0o644)
    done = run_in(lab.a, "up", "-c", str(path), "--strict")  # the file's hook runs now
    assert "on-up hook failed (exit code 7)" in done.stderr
    done = run_in(lab.a, "up", "-c", str(path), "--strict", "--on-up", "exit 9")  # replaces it
    assert "on-up hook failed (exit code 9)" in done.stderr


def test_keepalives_take_a_killed_peer_down_and_up_again(lab: TwoHosts,
                                                        run_dir: object) -> None:
    keepalive = 0.6
    extra = ("--keepalive", str(keepalive))
    side_a = LinkbridgeProcess(lab.a, ["--log-format", "json",
                                       *udp_side(lab, 0, extra=extra).args], "A")
    side_b = udp_side(lab, 1, extra=extra)
    with side_a, side_b:  # B is killed in between; stopping it again does nothing
        wait_for(lambda: link_state(side_a) == "up", 10, "A's link up")
        time.sleep(4 * keepalive)  # idle, yet kept up by keepalives alone
        assert link_state(side_a) == "up"
        doc = tunnel_of(side_a, "lblr")
        assert doc is not None and doc["keepalives_sent"] >= 3
        consumed = doc["link_side"]["drops"].get("keepalive", 0)
        assert consumed >= 3  # B's keepalives, counted on receipt
        # and none of them reached the TUN device: all else did (kernel IPv6 noise, say)
        assert doc["tunnel"]["tx_packets"] == doc["link_side"]["rx_packets"] - consumed
        killed = time.time()
        side_b.stop(signal.SIGKILL)
        wait_for(lambda: link_state(side_a) == "down", 10, "A's link down")
        with udp_side(lab, 1, extra=extra):
            wait_for(lambda: link_state(side_a) == "up", 10, "A's link up again")
            assert ping(lab.a, OVERLAY[1], count=3, interval=0.01).received == 3
            b_stopping = time.time()  # then A may see its link go stale before it stops itself
    records = [json.loads(line) for line in side_a.output().splitlines()]
    changes = [(record["time"], record["message"].split(" (")[0]) for record in records
               if record["message"].startswith("lblr: link ")]
    assert [message for _, message in changes[:4]] == [
        "lblr: link down -> up", "lblr: link up -> stale", "lblr: link stale -> down",
        "lblr: link down -> up"], changes
    assert all(at >= b_stopping for at, _ in changes[4:]), changes  # only as B stops
    assert changes[2][0] - killed < 3 * keepalive  # the log's own clock, not status polling


def test_keepalives_over_a_lossy_sim_link_show_the_silent_direction(lab: TwoHosts,
                                                                   run_dir: object) -> None:
    """B's frames are all lost on the way (loss=100% on its sending side): A hears nothing
    and keeps its link down, B hears A's keepalives and has its link up."""
    extra = ("--keepalive", "0.3")
    side_a = udp_side(lab, 0, extra=extra)
    side_b = udp_side(lab, 1, extra=(*extra, "--via", "sim:?loss=100%"))
    with side_a, side_b:
        wait_for(lambda: link_state(side_b) == "up", 3, "B's link up")
        time.sleep(1.0)
        assert link_state(side_a) == "down"
        doc = tunnel_of(side_b, "lblr")
        assert doc is not None and doc["keepalives_sent"] >= 2
        assert doc["link_side"]["drops"].get("sim_loss", 0) >= 2  # its keepalives, lost


@pytest.mark.parametrize("scheme", ["serial", "kiss"])
def test_serial_tunnel_started_before_its_device_comes_up(lab: TwoHosts, tmp_path: Path,
                                                          run_dir: object, scheme: str) -> None:
    directory = tmp_path / "dev"
    directory.mkdir()
    ends = [f"{directory}/ttyA", f"{directory}/ttyB"]
    sides = [LinkbridgeProcess(ns_name, ["up", "--link", f"{scheme}:{ends[me]}?wait=1",
                                         "--address", OVERLAY[me], "--remote", OVERLAY[1 - me],
                                         "--name", "lbtty"], "AB"[me])
             for me, ns_name in enumerate((lab.a, lab.b))]
    with sides[0], sides[1]:  # READY=1 without the devices: the TUNs exist, the links wait
        assert "lbtty" in devices(lab.a)
        assert link_state(sides[0], "lbtty") == "down"
        assert "waiting for it" in sides[0].output()  # one story for every stream link
        with UartCable(None, directory=str(directory)) as cable:
            cable.start()
            wait_for(lambda: ping(lab.a, OVERLAY[1], count=1, timeout=0.5).received == 1, 10,
                     "a ping over the serial line that appeared")
            # the supervisor looks at its links every 0.1 s (tunnel/supervisor.py's TICK)
            wait_for(lambda: link_state(sides[0], "lbtty") == "up", 2, "A's link up")


BROKEN_AND_GOOD = """
[[tunnel]]
name = "lbgood"
link = "udp:{peer}:47110"
address = "{me}"
remote = "{peer_overlay}"

[[tunnel]]
name = "lbbroken"
link = "serial:{device}"
remote = "198.19.71.0/24"
"""


def test_broken_tunnel_is_retried_while_the_good_one_runs(lab: TwoHosts, tmp_path: Path,
                                                          run_dir: object) -> None:
    device = tmp_path / "ttyA"
    config = tmp_path / "a.toml"
    config.write_text(BROKEN_AND_GOOD.format(peer=UNDERLAY[1], me=OVERLAY[0],
                                             peer_overlay=OVERLAY[1], device=device))
    peer = udp_side(lab, 1, port=47110, name="lbgood")
    side_a = LinkbridgeProcess(lab.a, ["up", "-c", str(config)], "A")
    with peer, side_a:
        assert ping(lab.a, OVERLAY[1], count=5, interval=0.01).received == 5
        assert "lbbroken" not in devices(lab.a)  # the failed attempt was rolled back
        assert "tunnel failed" not in side_a.output()
        assert "lbbroken failed: " in side_a.output() and "retrying in 1 s" in side_a.output()
        with UartCable(None, directory=str(tmp_path)) as cable:
            cable.start()
            wait_for(lambda: "lbbroken" in devices(lab.a), 10, "the retried tunnel")
            assert ping(lab.a, OVERLAY[1], count=5, interval=0.01).received == 5
    strict = run_in(lab.a, "up", "-c", str(config), "--strict")
    assert strict.returncode == 1
    assert f"cannot open {device}" in strict.stderr
    assert not {"lbgood", "lbbroken"} & devices(lab.a)


RELOAD = """
[[tunnel]]
name = "lbkeep"
link = "udp:{peer}:47120"
address = "{me}"
remote = "{peer_overlay}"
{more}
"""
SECOND = """
[[tunnel]]
name = "{name}"
rx = {rx}
tx = {tx}
remote = "198.19.{net}.0/24"
"""


def reload_config(path: Path, more: str) -> None:
    path.write_text(RELOAD.format(peer=UNDERLAY[1], me=OVERLAY[0], peer_overlay=OVERLAY[1],
                                  more=more))


def ifindex(ns_name: str, name: str) -> int:
    with netns.inside(ns_name), IPRoute() as ipr:
        return int(ipr.link_lookup(ifname=name)[0])


def test_sighup_applies_the_changed_file_without_touching_the_rest(
        lab: TwoHosts, tmp_path: Path, run_dir: object) -> None:
    config = tmp_path / "a.toml"
    reload_config(config, SECOND.format(name="lbgone", rx=2001, tx=2002, net=72)
                  + SECOND.format(name="lbchg", rx=2003, tx=2004, net=73))
    peer = udp_side(lab, 1, port=47120, name="lbkeep")
    side_a = LinkbridgeProcess(lab.a, ["up", "-c", str(config)], "A")
    with peer, side_a:
        assert side_a.proc is not None
        before = {name: ifindex(lab.a, name) for name in ("lbkeep", "lbchg")}
        assert ping(lab.a, OVERLAY[1], count=3, interval=0.01).received == 3
        result: list[PingResult] = []
        stream = threading.Thread(
            target=lambda: result.append(ping(lab.a, OVERLAY[1], count=300, interval=0.01)))
        stream.start()
        time.sleep(0.5)
        reload_config(config, SECOND.format(name="lbchg", rx=2003, tx=2005, net=73)
                      + SECOND.format(name="lbnew", rx=2006, tx=2007, net=74))
        wrong = run_in(lab.a, "reload", "1")
        assert wrong.returncode == 1
        assert wrong.stderr.strip() == (
            "linkbridge: error: no linkbridge process running from a config file has pid 1; "
            f"those that do: {side_a.proc.pid}")  # the peer runs without a file
        done = run_in(lab.a, "reload")
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"reloading {side_a.proc.pid} ({config})"
        wait_for(lambda: "lbnew" in devices(lab.a) and "lbgone" not in devices(lab.a), 5,
                 "the reload")
        stream.join()
        assert result[0].sent == 300 and result[0].received == 300  # not one packet lost
        assert ifindex(lab.a, "lbkeep") == before["lbkeep"]  # untouched
        assert ifindex(lab.a, "lbchg") != before["lbchg"]  # restarted with its new tx port
        assert "reload: 1 added, 1 removed, 1 changed, 0 with new peers, 1 unchanged" \
            in side_a.output()
        config.write_text("this is not toml [")
        os.kill(side_a.proc.pid, signal.SIGHUP)
        wait_for(lambda: "the running tunnels are kept as they are" in side_a.output(), 5,
                 "the refused reload")
        assert {"lbkeep", "lbchg", "lbnew"} <= devices(lab.a)
        assert side_a.stop() == 0
    assert not {"lbkeep", "lbchg", "lbnew"} & devices(lab.a)


def test_encrypted_keepalives_cannot_be_forged(lab: TwoHosts, tmp_path: Path,
                                               run_dir: object) -> None:
    """With encryption, a keepalive travels as transport data: plaintext keepalives sent
    from the dead peer's address and port keep nothing up."""
    key_args: list[tuple[str, ...]] = []
    for me in (0, 1):
        done = run_in(lab.a, "genkey")
        (tmp_path / f"{me}.key").write_text(done.stdout)
        (tmp_path / f"{me}.key").chmod(0o600)
    public = [run_in_input(lab.a, (tmp_path / f"{me}.key").read_text(), "pubkey").strip()
              for me in (0, 1)]
    for me in (0, 1):
        key_args.append(("--keepalive", "0.3", "--private-key", str(tmp_path / f"{me}.key"),
                         "--peer-public-key", public[1 - me]))
    side_a, side_b = udp_side(lab, 0, extra=key_args[0]), udp_side(lab, 1, extra=key_args[1])
    with side_a, side_b:  # B is killed in between; stopping it again does nothing
        wait_for(lambda: link_state(side_a) == "up", 10, "A's encrypted link up")
        side_b.stop(signal.SIGKILL)
        with netns.inside(lab.b):
            forger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with forger:
            forger.bind((UNDERLAY[1], 47100))
            deadline = time.monotonic() + 10
            while True:  # a batch first: on a busy machine A may see B gone before the forger
                for _ in range(20):
                    forger.sendto(KEEPALIVE_FRAME, (UNDERLAY[0], 47100))
                if link_state(side_a) == "down":
                    break
                assert time.monotonic() < deadline, "forged keepalives kept A's link up"

        def refused() -> int:  # by the encrypt layer, counted
            doc = tunnel_of(side_a, "lblr")
            return -1 if doc is None else sum(doc["link_side"]["drops"].values())

        wait_for(lambda: refused() >= 20, 10, "20 forged keepalives refused and counted")
        assert link_state(side_a) == "down"


def test_keepalives_count_against_a_duty_cycle(lab: TwoHosts, registry: LinkRegistry,
                                               run_dir: object) -> None:
    """Over a simulated radio allowed 16% of any 3 s window (72 one-byte frames at 1200 bit/s,
    6.7 ms on the air each), keepalives every 0.02 s wait for the duty cycle like packets."""
    link = "sim:?duplex=half&rate=1200&persist=255&duty=16%&duty_window=3s&mtu=68&seed=3"
    # --queue off: each keepalive goes to the radio at once (the queue would pace them)
    with lab_tunnels(lab, link, extra_args=("--keepalive", "0.02", "--queue", "off"),
                     registry=registry) as sides:
        time.sleep(3)
        doc = tunnel_of(sides[0], TUN_NAME)
        with netns.inside(lab.a):
            stations = query_stats((UNDERLAY[0], DEFAULT_PORT))["stations"]
    assert doc is not None and doc["keepalives_sent"] >= 5
    station = next(value for key, value in stations.items()
                   if key.rsplit(":", 1)[0] == UNDERLAY[0])
    assert station["offered"] >= doc["keepalives_sent"]  # every keepalive went on the radio
    assert station["duty_waits"] > 0  # keepalives held back by the duty cycle
    assert station["duty_peak"] <= 0.16 * 3 + 1e-6  # no window ever held more


def test_a_reload_with_a_bad_peer_key_keeps_the_encrypted_tunnel_running(
        lab: TwoHosts, tmp_path: Path, run_dir: object) -> None:
    """A reload that adds a tunnel with a low-order peer public key is refused in one line;
    the encrypted tunnel keeps passing pings throughout."""
    keys = [tmp_path / f"{me}.key" for me in (0, 1)]
    for path in keys:
        path.write_text(new_private_key() + "\n")
        path.chmod(0o600)
    public = [public_key_of(path.read_text()) for path in keys]
    encrypted = f'private-key = "{keys[0]}"\npeer-public-key = "{public[1]}"\n'
    config = tmp_path / "a.toml"
    reload_config(config, "")
    config.write_text(config.read_text().replace("[[tunnel]]\n", "[[tunnel]]\n" + encrypted))
    peer = udp_side(lab, 1, port=47120, name="lbkeep",
                    extra=("--private-key", str(keys[1]), "--peer-public-key", public[0]))
    side_a = LinkbridgeProcess(lab.a, ["up", "-c", str(config)], "A")
    with peer, side_a:
        assert side_a.proc is not None
        assert ping(lab.a, OVERLAY[1], count=3, interval=0.05).received == 3
        with ping_stream(lab.a, OVERLAY[1], count=100, interval=0.01) as result:
            time.sleep(0.3)
            low_order = base64.b64encode(bytes(32)).decode()
            config.write_text(config.read_text() + f'[[tunnel]]\nname = "lbbad"\nlink = '
                              f'"udp:{UNDERLAY[1]}:47121"\nremote = "198.19.75.0/24"\n'
                              f'private-key = "{keys[0]}"\npeer-public-key = "{low_order}"\n')
            os.kill(side_a.proc.pid, signal.SIGHUP)
            wait_for(lambda: "the running tunnels are kept as they are" in side_a.output(), 5,
                     "the refused reload")
        assert result[0].received == 100, result  # not one ping lost
        assert "lbbad" not in devices(lab.a) and "lbkeep" in devices(lab.a)
        [line] = [line for line in side_a.output().splitlines() if "reload:" in line]
        assert "tunnel[1]: the peer public key" in line and "low-order point" in line, line
        assert side_a.stop() == 0
    assert "Traceback" not in side_a.output()
