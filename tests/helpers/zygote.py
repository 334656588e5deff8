"""A linkbridge imported once that forks the tests' tunnels: `python -m linkbridge` spends about
0.4 s of CPU importing (pyroute2 alone half of it) before it does anything, and the suite starts
hundreds of tunnels on a 2-CPU machine. A forked child of this process is the same program
(`linkbridge.cli.main.main(ARGS)` in a process of its own, in its namespace, with its own
environment, output and exit status), started in a few milliseconds.

The zygote (`python -m tests.helpers.zygote FD`) is single-threaded and serves one pytest
process over a SOCK_SEQPACKET socket: a request is the JSON of (namespace, argv, environment,
working directory) with the child's stdin, stdout and stderr as SCM_RIGHTS descriptors; the
answer is the child's pid, and each child's end comes later as its exit status (as
`Popen.returncode`: negative for a signal). The child leaves the zygote's loop with its request
applied and runs `sys.exit(main(argv))` at the module's top level, so it ends as
`python -m linkbridge` does (threads joined, atexit handlers, buffers flushed). When the pytest
process goes away the zygote kills its children and exits.

`Zygote` is the pytest side; `ForkedProcess` answers what the tests ask of a Popen (pid, poll,
wait, returncode, send_signal, kill). linkbridge/lab/processes.py uses it through
`set_launcher()` (tests/conftest.py); tests that run the real command line (`run_in`, the lab
command, the wheel) still start fresh interpreters.
"""

from __future__ import annotations

import array
import contextlib
import gc
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import IO, Any

from linkbridge.lab import netns, processes

MAX_FDS = 3
FRESH_ENV = "LINKBRIDGE_TEST_FRESH"  # set: no zygote, every tunnel a new interpreter
MESSAGE = 65536


def _send(sock: socket.socket, document: dict[str, Any], fds: tuple[int, ...] = ()) -> None:
    ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    sock.sendmsg([json.dumps(document).encode()], ancillary)


def _receive(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """One message and the descriptors it carried; (None, []) when the other side is gone."""
    fds = array.array("i")
    data, ancillary, _flags, _address = sock.recvmsg(
        MESSAGE, socket.CMSG_SPACE(MAX_FDS * fds.itemsize))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
    return (json.loads(data) if data else None), list(fds)


# --- the zygote ------------------------------------------------------------------------------

def serve(sock: socket.socket) -> list[str]:
    """Fork a child per request until the client goes away (then exit). Returns only in a
    child: its argv, with its namespace, descriptors, environment and directory applied."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes select() through the pipe
    children: set[int] = set()
    while True:
        ready, _, _ = select.select([sock.fileno(), wake_r], [], [])
        if wake_r in ready:
            os.read(wake_r, 4096)
            _reap(sock, children)
        if sock.fileno() not in ready:
            continue
        request, fds = _receive(sock)
        if request is None:  # the pytest process is gone: so are its tunnels
            for pid in children:
                os.kill(pid, signal.SIGKILL)
            os._exit(0)
        pid = os.fork()
        if pid == 0:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            sock.detach()  # closed below with every other descriptor of the zygote's
            return _become(request, fds)
        for fd in fds:
            os.close(fd)
        children.add(pid)
        _send(sock, {"pid": pid})


def _reap(sock: socket.socket, children: set[int]) -> None:
    while children:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            return
        children.discard(pid)
        _send(sock, {"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def _become(request: dict[str, Any], fds: list[int]) -> list[str]:
    """In the child: the request's descriptors as 0, 1, 2 (nothing else open), its namespace,
    environment and directory."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    if request["ns"]:
        netns.enter(request["ns"])
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    sys.argv = [sys.argv[0], *request["argv"]]
    return list(request["argv"])


# --- the pytest side -------------------------------------------------------------------------

class ForkedProcess:
    """A child of the zygote, as much of a Popen as the tests use."""

    def __init__(self, zygote: Zygote, pid: int, stdout: IO[bytes] | None) -> None:
        self._zygote = zygote
        self.pid = pid
        self.stdout = stdout
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._zygote.exit_code(self.pid, 0.0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = self._zygote.exit_code(self.pid, timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(f"linkbridge (pid {self.pid})", timeout or 0.0)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # it ended meanwhile (as Popen does)
                os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Zygote:
    """The pytest process's zygote, started on the first launch."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.helpers.zygote", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
        theirs.close()
        self._sock = ours
        self._lock = threading.Lock()  # one request at a time
        self._changed = threading.Condition()
        self._answers: list[int] = []
        self._codes: dict[int, int] = {}
        self._gone = False  # the zygote ended: every child it had was killed
        self._stdin = os.open(os.devnull, os.O_RDONLY)
        self._reader = threading.Thread(target=self._read, name="zygote", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            message, _ = _receive(self._sock)
            with self._changed:
                if message is None:
                    self._gone = True
                    self._answers.append(-1)
                elif "pid" in message:
                    self._answers.append(int(message["pid"]))
                else:
                    self._codes[int(message["exited"])] = int(message["code"])
                self._changed.notify_all()
            if message is None:
                return

    def launch(self, ns_name: str | None, argv: list[str], env: dict[str, str],
               output: IO[bytes] | int, errors: IO[bytes] | None = None) -> ForkedProcess:
        """Start `linkbridge ARGV` in `ns_name` with stdout to `output` (a file, or
        subprocess.PIPE: then the process's `stdout` reads it) and stderr to `errors` (None:
        to stdout)."""
        pipe = None
        if output == subprocess.PIPE:
            read_end, write_end = os.pipe()
            pipe, out_fd = os.fdopen(read_end, "rb"), write_end
        else:
            assert not isinstance(output, int)
            out_fd = output.fileno()
        err_fd = out_fd if errors is None else errors.fileno()
        request = {"ns": ns_name, "argv": argv, "env": env, "cwd": os.getcwd()}
        with self._lock, self._changed:
            _send(self._sock, request, (self._stdin, out_fd, err_fd))
            self._changed.wait_for(lambda: bool(self._answers), timeout=30)
            pid = self._answers.pop(0) if self._answers else -1
        if pipe is not None:
            os.close(out_fd)
        if pid < 0:
            raise RuntimeError("the test zygote did not start the process")
        return ForkedProcess(self, pid, pipe)

    def exit_code(self, pid: int, timeout: float | None) -> int | None:
        """The exit status of a child, None if it still runs after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while pid not in self._codes:
                if self._gone:
                    return -signal.SIGKILL
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._changed.wait(left)
            return self._codes[pid]

    def close(self) -> None:
        """Stop the zygote (it kills children still running)."""
        self._sock.shutdown(socket.SHUT_RDWR)
        self._process.wait(10)
        self._sock.close()
        os.close(self._stdin)


class ZygoteLauncher:
    """A launcher for linkbridge.lab.processes.set_launcher(): the zygote is started by the
    first launch, so a run that starts no tunnel starts no zygote."""

    def __init__(self) -> None:
        self._zygote: Zygote | None = None
        self._lock = threading.Lock()

    def _started(self) -> Zygote:
        with self._lock:
            if self._zygote is None:
                self._zygote = Zygote()
            return self._zygote

    def __call__(self, ns_name: str | None, argv: list[str], env: dict[str, str],
                 output: IO[bytes] | int) -> ForkedProcess:
        return self._started().launch(ns_name, argv, env, output)

    def run(self, ns_name: str | None, argv: list[str],
            timeout: float) -> subprocess.CompletedProcess[str]:
        """`linkbridge ARGV` in `ns_name` to its end: its exit status, stdout and stderr."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            child = self._started().launch(ns_name, argv, dict(os.environ), out, err)
            try:
                code = child.wait(timeout)
            except subprocess.TimeoutExpired:
                child.kill()
                raise
            texts = []
            for file in (out, err):
                file.seek(0)
                texts.append(file.read().decode(errors="replace"))
        return subprocess.CompletedProcess(["linkbridge", *argv], code, *texts)

    def close(self) -> None:
        if self._zygote is not None:
            self._zygote.close()


_installed: ZygoteLauncher | None = None


def install() -> ZygoteLauncher:
    """Fork the lab's tunnels (and run_in's commands) from a zygote from now on."""
    global _installed
    _installed = ZygoteLauncher()
    processes.set_launcher(_installed)
    return _installed


def uninstall() -> None:
    global _installed
    processes.set_launcher(None)
    if _installed is not None:
        _installed.close()
    _installed = None


def installed() -> ZygoteLauncher | None:
    """The zygote launcher in use, None when each command gets a new interpreter."""
    return _installed


if __name__ == "__main__":
    from linkbridge.cli.main import COMMANDS, command, main
    from linkbridge.plugin.registry import get_plugin_manager

    get_plugin_manager()  # the plugins imported once, here
    for name in COMMANDS:  # and every command's module (main imports the one it runs)
        command(name)
    gc.freeze()  # what is here now is shared with every child: no collection touches it
    child_argv = serve(socket.socket(fileno=int(sys.argv[1])))
    sys.exit(main(child_argv))
