"""The supervisor (tunnel/supervisor.py) over in-memory tunnels: retries with backoff, reloads
that leave unchanged tunnels alone, and what systemd hears (READY=1, STATUS=)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from linkbridge.errors import LinkError
from linkbridge.ops.signals import Shutdown
from linkbridge.plugin.registry import get_plugin_manager
from linkbridge.plugin.tunnel_info import TunnelInfo
from linkbridge.testing import MemoryEndpoint
from linkbridge.tunnel import supervisor as supervisor_module
from linkbridge.tunnel.session import Policy, Session, TunnelJob
from linkbridge.tunnel.supervisor import Supervisor
from linkbridge.wire.liveness import Thresholds

MANAGER = get_plugin_manager(load_entry_points=False)


class Tunnels:
    """Memory tunnels by name; `broken` ones fail to open (counted in `attempts`)."""

    def __init__(self) -> None:
        self.opened: dict[str, Session] = {}
        self.broken: set[str] = set()
        self.attempts: dict[str, int] = {}

    def job(self, name: str, setting: int = 0) -> TunnelJob:
        def opener(stack: contextlib.ExitStack) -> Session:
            self.attempts[name] = self.attempts.get(name, 0) + 1
            if name in self.broken:
                raise LinkError(f"{name}: cannot open the link")
            session = Session(MemoryEndpoint(f"tun-{name}"), MemoryEndpoint(f"link-{name}"),
                              TunnelInfo(name, 1400, (), (), f"memory:{name}"))
            self.opened[name] = session
            stack.callback(self.opened.pop, name)
            return session

        return TunnelJob(name, opener, {"setting": setting},
                         thresholds=Thresholds(1.0, 1.5))


@pytest.fixture
def notify(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    monkeypatch.setattr(supervisor_module, "FIRST_RETRY", 0.2)
    with sock:
        yield sock


def messages_until(sock: socket.socket, wanted: str) -> list[str]:
    seen = []
    while wanted not in seen:
        seen.append(sock.recv(4096).decode())
    return seen


def run_until(supervisor: Supervisor, *args: object) -> threading.Thread:
    """Run the supervisor in a thread (signals need the main thread: Shutdown is raised)."""
    def body() -> None:
        with contextlib.suppress(Shutdown):
            supervisor.run(*args)  # type: ignore[arg-type]

    thread = threading.Thread(target=body)
    thread.start()
    return thread


def stop(supervisor: Supervisor, thread: threading.Thread) -> None:
    original = supervisor._poll

    def shutdown(now: float) -> None:
        original(now)
        raise Shutdown(15)

    supervisor._poll = shutdown  # type: ignore[method-assign]
    thread.join(5)
    assert not thread.is_alive()


def test_broken_tunnel_is_retried_while_the_other_runs(notify: socket.socket,
                                                       run_dir: Path) -> None:
    tunnels = Tunnels()
    tunnels.broken.add("bad")
    supervisor = Supervisor(MANAGER, Policy(retry=True))
    thread = run_until(supervisor, [tunnels.job("good"), tunnels.job("bad")])
    seen = messages_until(notify, "READY=1")
    assert "good" in tunnels.opened and "bad" not in tunnels.opened
    assert messages_until(notify, "STATUS=good link down; bad failed, retrying")
    tunnels.opened["good"].link_side.feed(b"frame")
    messages_until(notify, "STATUS=good link up; bad failed, retrying")
    tunnels.broken.clear()
    seen = messages_until(notify, "STATUS=good link up; bad link down")
    assert tunnels.attempts["bad"] >= 2
    assert not any("good link stale" in message for message in seen[:-1])
    messages_until(notify, "STATUS=good link stale; bad link down")  # nothing more heard
    messages_until(notify, "STATUS=good link down; bad link down")
    stop(supervisor, thread)
    assert tunnels.opened == {}  # everything undone
    assert messages_until(notify, "STOPPING=1")


def test_without_retries_a_failure_stops_everything(run_dir: Path) -> None:
    tunnels = Tunnels()
    tunnels.broken.add("bad")
    with pytest.raises(LinkError, match="bad: cannot open the link"):
        Supervisor(MANAGER, Policy()).run([tunnels.job("good"), tunnels.job("bad")])
    assert tunnels.opened == {}


def test_reload_touches_only_what_changed(notify: socket.socket, run_dir: Path) -> None:
    tunnels = Tunnels()
    requested = threading.Event()
    new_set = [tunnels.job("keep"), tunnels.job("change", 2), tunnels.job("add")]
    supervisor = Supervisor(MANAGER, Policy(retry=True))
    thread = run_until(supervisor, [tunnels.job("keep"), tunnels.job("change", 1),
                                    tunnels.job("remove")], requested, lambda: new_set)
    messages_until(notify, "READY=1")
    kept, changed = tunnels.opened["keep"], tunnels.opened["change"]
    requested.set()
    messages_until(notify, "STATUS=keep link down; change link down; add link down")
    assert tunnels.opened["keep"] is kept  # never reopened
    assert tunnels.opened["change"] is not changed
    assert set(tunnels.opened) == {"keep", "change", "add"}
    assert tunnels.attempts == {"keep": 1, "change": 2, "remove": 1, "add": 1}
    stop(supervisor, thread)


def test_after_user_nothing_new_starts(notify: socket.socket, run_dir: Path,
                                       caplog: pytest.LogCaptureFixture) -> None:
    tunnels = Tunnels()
    requested = threading.Event()
    supervisor = Supervisor(MANAGER, Policy(retry=True, user="nobody"))
    thread = run_until(supervisor, [tunnels.job("keep"), tunnels.job("remove")], requested,
                       lambda: [tunnels.job("keep", 5), tunnels.job("add")])
    messages_until(notify, "READY=1")
    requested.set()
    messages_until(notify, "STATUS=keep link down")
    assert set(tunnels.opened) == {"keep"}  # the removal applied, the rest refused
    assert tunnels.attempts == {"keep": 1, "remove": 1}
    stop(supervisor, thread)
    assert ("reload: cannot start keep, add: since --user nobody the process cannot create "
            "TUN devices; only removals are applied (restart the service for the rest)"
            in caplog.messages)
