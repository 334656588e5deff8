"""Live status of every running tunnel: one control socket per tunnel under the run directory.

Each tunnel serves a JSON snapshot of itself (device, link, routes, counters per side) to
whoever connects to `RUN_DIR/<uid>/<pid>-<device>.sock`. The `<uid>` directory belongs to the
user the tunnel runs as (mode 0700, the socket 0600), so that user and root can read it and
nobody else; it is set up before `--user` drops root and stays usable afterwards, because the
listening socket is already open. A socket left behind by a killed process refuses
connections: readers skip it and remove it.

This module serves and collects the documents; status_data.py parses them into typed form,
which status_format.py (the table, JSON), metrics.py and watch.py format.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from linkbridge.datapath.counters import Counters
from linkbridge.datapath.endpoint import Endpoint
from linkbridge.ops.reasons import describe_reasons
from linkbridge.ops.status_data import TunnelStatus, parse_tunnel
from linkbridge.plugin.tunnel_info import TunnelInfo
from linkbridge.wire import drops

log = logging.getLogger("linkbridge")

DEFAULT_RUN_DIR = "/run/linkbridge/run"  # the kernel backend keeps its state beside it
RUN_DIR_ENV = "LINKBRIDGE_RUN_DIR"
SUFFIX = ".sock"
READ_TIMEOUT = 2.0


def run_dir() -> Path:
    """Where tunnels publish their control sockets ($LINKBRIDGE_RUN_DIR overrides)."""
    return Path(os.environ.get(RUN_DIR_ENV) or DEFAULT_RUN_DIR)


def socket_name(pid: int, device: str) -> str:
    """`<pid>-<device>.sock`, with anything but [A-Za-z0-9._=-] in the device turned into `_`."""
    return f"{pid}-{re.sub(r'[^A-Za-z0-9._=-]', '_', device)}{SUFFIX}"


def counters_snapshot(counters: Counters) -> dict[str, Any]:
    """Counters as a dict; retried because another thread may add a drop reason meanwhile."""
    while True:
        with contextlib.suppress(RuntimeError):  # dict changed size during iteration
            return counters.as_dict()


def snapshot(info: TunnelInfo, tunnel_side: Endpoint, link_side: Endpoint,
             started: float, now: float) -> dict[str, Any]:
    """What `linkbridge status --json` shows for one tunnel.

    `tunnel` counts the device side (rx: read from the device, tx: written into it), `link` the
    link side (tx: sent to the peer, rx: received from it); drops are keyed by reason.
    """
    return {
        "device": info.device,
        "pid": os.getpid(),
        "uid": os.geteuid(),
        "link": info.link,
        "mtu": info.mtu,
        "addresses": list(info.addresses),
        "routes": list(info.routes),
        "started": round(started, 3),
        "uptime_s": round(max(0.0, now - started), 3),
        "tunnel": {"name": tunnel_side.name, **counters_snapshot(tunnel_side.counters)},
        "link_side": {"name": link_side.name, **counters_snapshot(link_side.counters)},
    }


def _process_gone(path: Path) -> bool:
    """True when the pid in a socket's name (`<pid>-...`) no longer runs.

    A socket that refuses connections may also belong to a tunnel between bind() and listen();
    only one whose process is gone is stale.
    """
    try:
        os.kill(int(path.name.partition("-")[0]), 0)
    except ValueError:
        return True  # not a name we write
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def remove_if_stale(path: Path) -> bool:
    """Remove `path` when its process is gone (killed without cleaning up); True if removed."""
    if not _process_gone(path):
        return False
    with contextlib.suppress(OSError):
        path.unlink()
    return True


def _sweep(owner_dir: Path) -> None:
    for path in owner_dir.glob(f"*{SUFFIX}"):
        remove_if_stale(path)


def _prepare_owner_dir(base: Path, uid: int, gid: int) -> Path:
    base.mkdir(mode=0o755, parents=True, exist_ok=True)
    owner_dir = base / str(uid)
    with contextlib.suppress(FileExistsError):
        owner_dir.mkdir(mode=0o700)
    if os.geteuid() == 0:
        os.chown(owner_dir, uid, gid)
    os.chmod(owner_dir, 0o700)
    return owner_dir


class StatusServer:
    """Serves snapshots of one tunnel on a unix socket from a background thread."""

    def __init__(self, info: TunnelInfo, tunnel_side: Endpoint, link_side: Endpoint,
                 uid: int, gid: int, base: Path,
                 extra: Callable[[], dict[str, Any]] | None = None,
                 reasons: Mapping[str, str] = drops.REASONS) -> None:
        self.info = info
        self.extra = extra
        self.reasons = reasons
        self.tunnel_side = tunnel_side
        self.link_side = link_side
        self.started = time.time()
        owner_dir = _prepare_owner_dir(base, uid, gid)
        _sweep(owner_dir)  # leftovers of killed tunnels
        self.path = owner_dir / socket_name(os.getpid(), info.device)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # our pid's own leftover: pids are reused
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.bind(str(self.path))
            os.chmod(self.path, 0o600)
            if os.geteuid() == 0:
                os.chown(self.path, uid, gid)
            self._sock.listen(8)
        except OSError:
            self._sock.close()
            raise
        self._sock.setblocking(False)
        self._wake = os.eventfd(0, os.EFD_CLOEXEC)  # readable once close() wants the thread
        self._thread = threading.Thread(target=self._serve, name=f"status-{info.device}",
                                        daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        ready = select.poll()
        ready.register(self._sock, select.POLLIN)
        ready.register(self._wake, select.POLLIN)
        while True:
            events = ready.poll()
            if any(fd == self._wake for fd, _ in events):
                return
            try:
                conn, _ = self._sock.accept()
            except BlockingIOError:
                continue  # the client gave up meanwhile
            with conn:
                conn.settimeout(READ_TIMEOUT)
                document = snapshot(self.info, self.tunnel_side, self.link_side,
                                    self.started, time.time())
                if self.extra is not None:
                    document.update(self.extra())
                document["reasons"] = describe_reasons(document, self.reasons)
                with contextlib.suppress(OSError):
                    conn.sendall(json.dumps(document).encode() + b"\n")

    def close(self) -> None:
        os.eventfd_write(self._wake, 1)
        self._thread.join()
        os.close(self._wake)
        self._sock.close()
        with contextlib.suppress(OSError):
            self.path.unlink()


@contextlib.contextmanager
def publish_status(info: TunnelInfo, tunnel_side: Endpoint, link_side: Endpoint,
                   uid: int | None = None, gid: int | None = None,
                   extra: Callable[[], dict[str, Any]] | None = None,
                   reasons: Mapping[str, str] = drops.REASONS) -> Iterator[None]:
    """Serve this tunnel's status while the block runs; a failure to publish is only logged.

    `uid`/`gid`: the user the tunnel will run as (after `--user`), by default the current one;
    `extra()`: more keys for each snapshot (the link's state, from the tunnel's runner);
    `reasons`: the descriptions of the drop reasons, for the snapshot's `reasons` map.
    """
    owner_uid = os.geteuid() if uid is None else uid
    owner_gid = os.getegid() if gid is None else gid
    try:
        server = StatusServer(info, tunnel_side, link_side, owner_uid, owner_gid, run_dir(),
                              extra, reasons)
    except OSError as exc:
        log.warning("%s: status not published in %s: %s", info.device, run_dir(),
                    exc.strerror or exc)
        yield
        return
    try:
        yield
    finally:
        server.close()


def read_one(path: Path) -> dict[str, Any] | None:
    """The snapshot served at `path`; None (and the file removed) when its process is gone."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(READ_TIMEOUT)
        try:
            sock.connect(str(path))
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ConnectionRefusedError, FileNotFoundError):
            remove_if_stale(path)  # left by a killed process, or one that is just starting
            return None
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM):
                return None  # another user's tunnel
            log.warning("status %s: %s", path, exc.strerror or exc)
            return None
    try:
        document: dict[str, Any] = json.loads(b"".join(chunks))
    except ValueError:
        log.warning("status %s: unreadable answer", path)
        return None
    return document


def collect(base: Path | None = None) -> list[dict[str, Any]]:
    """Snapshots of every live tunnel whose socket this user may read, sorted by device."""
    base = run_dir() if base is None else base
    found = []
    with contextlib.suppress(OSError):
        for owner_dir in sorted(base.iterdir()):
            try:
                paths = sorted(owner_dir.glob(f"*{SUFFIX}"))
            except OSError:
                continue  # not ours to read
            for path in paths:
                document = read_one(path)
                if document is not None:
                    found.append(document)
    return sorted(found, key=lambda doc: (str(doc.get("device")), int(doc.get("pid", 0))))


def collect_status(base: Path | None = None) -> list[TunnelStatus]:
    """collect() parsed into typed form; a document that does not parse is logged and skipped."""
    tunnels = []
    for document in collect(base):
        try:
            tunnels.append(parse_tunnel(document))
        except ValueError as exc:
            log.warning("status of pid %s: unreadable document: %s", document.get("pid", "?"),
                        exc)
    return tunnels
