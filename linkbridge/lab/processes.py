"""linkbridge processes started inside a lab namespace, waited on until they report READY=1."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any, Protocol

from linkbridge.errors import LinkbridgeError
from linkbridge.lab import netns

log = logging.getLogger("linkbridge")
READY_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


def spawn(ns_name: str | None, argv: Sequence[str], env: dict[str, str] | None = None,
          **kwargs: Any) -> subprocess.Popen[Any]:
    """Start `argv` inside namespace `ns_name` (None: this namespace)."""
    preexec = (lambda: netns.enter(ns_name)) if ns_name else None
    return subprocess.Popen(list(argv), env=env, preexec_fn=preexec, **kwargs)


class Process(Protocol):
    """What a LinkbridgeProcess holds of its process: a Popen, or what a launcher gives."""

    pid: int
    returncode: int | None
    stdout: IO[bytes] | None

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def send_signal(self, sig: int) -> None: ...

    def kill(self) -> None: ...


# (namespace, linkbridge's arguments, environment, stdout and stderr: a file or
# subprocess.PIPE) -> the running process
Launcher = Callable[[str | None, list[str], dict[str, str], IO[bytes] | int], Process]
_launcher: Launcher | None = None


def set_launcher(launcher: Launcher | None) -> None:
    """Start `python -m linkbridge ARGS` processes (those without a wrapper) through
    `launcher`: a test suite's server that forks them from one pre-imported interpreter
    (tests/helpers/zygote.py). None: a new interpreter each, as always."""
    global _launcher
    _launcher = launcher


class LinkbridgeProcess:
    """`python -m linkbridge ARGS` in a namespace; start() returns once it is ready."""

    def __init__(self, ns_name: str | None, args: Sequence[str], label: str,
                 wrapper: Sequence[str] = (), verbose: int = 0,
                 program: Sequence[str] = ()) -> None:
        """`wrapper` runs before the interpreter, e.g. setpriv to start with fewer privileges;
        `verbose` (the count of -v) runs it with as many -v and logs each line it prints, as
        it comes, labelled (`linkbridge -v lab` shows its tunnels' logs); `program` is the
        command that runs linkbridge (default: `python -m linkbridge` of this interpreter, or
        the launcher), e.g. another venv's `linkbridge` that a benchmark compares."""
        self.ns_name = ns_name
        self.args = ["-" + "v" * verbose] * bool(verbose) + list(args)
        self.wrapper = list(wrapper)
        self.program = list(program)
        self.label = label
        self.verbose = verbose
        self.proc: Process | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - read by output() after exit
        self._log_lock = threading.Lock()
        self._relay: threading.Thread | None = None

    def launch(self) -> None:
        """Start the process; wait_ready() then waits for its READY=1."""
        self._notify_dir = tempfile.TemporaryDirectory(prefix="lb-notify-")
        path = os.path.join(self._notify_dir.name, "notify")
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._notify.bind(path)
        os.chmod(self._notify_dir.name, 0o755)  # reachable after `--user` dropped root
        os.chmod(path, 0o666)
        env = dict(os.environ, NOTIFY_SOCKET=path)
        output: IO[bytes] | int = subprocess.PIPE if self.verbose else self._log
        if _launcher is not None and not self.wrapper and not self.program:
            self.proc = _launcher(self.ns_name, list(self.args), env, output)
        else:
            program = self.program or [sys.executable, "-m", "linkbridge"]
            self.proc = spawn(self.ns_name, [*self.wrapper, *program, *self.args],
                              env=env, stdout=output, stderr=subprocess.STDOUT)
        if self.verbose:
            self._relay = threading.Thread(target=self._relay_lines, daemon=True)
            self._relay.start()

    def _relay_lines(self) -> None:
        """Keep and log each line the process prints, until it exits."""
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._log_lock:
                self._log.write(line)
            text = line.decode(errors="replace").rstrip()
            log.info("%s: %s", self.label, text.removeprefix("linkbridge: "))

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        assert self.proc is not None
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise LinkbridgeError(f"{self.label} exited with {self.proc.returncode}: "
                                          f"{self.output().strip().splitlines()[-1:]}")
                self._notify.settimeout(0.2)
                with contextlib.suppress(TimeoutError):
                    if b"READY=1" in self._notify.recv(4096):
                        return
            self.stop()
            raise LinkbridgeError(f"{self.label} not ready after {timeout:.0f} s: {self.output()}")
        finally:
            self._notify.close()
            self._notify_dir.cleanup()

    def start(self, timeout: float = READY_TIMEOUT) -> None:
        self.launch()
        self.wait_ready(timeout)

    def output(self) -> str:
        if self._relay is not None and self.proc is not None and self.proc.poll() is not None:
            self._relay.join()  # the process is gone: its last lines are on their way
        with self._log_lock:
            self._log.seek(0)
            text = self._log.read().decode(errors="replace")
            self._log.seek(0, os.SEEK_END)
        return text

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        """Signal the process and wait; kill it if it does not stop in time. Returns its code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._relay is not None:
            self._relay.join()
            assert self.proc.stdout is not None
            self.proc.stdout.close()
        return self.proc.returncode

    def terminate(self) -> None:
        """Send SIGTERM if the process still runs (stop() then waits for it)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def __enter__(self) -> LinkbridgeProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()  # the output stays readable after exit; the unnamed log file goes with self


@contextlib.contextmanager
def running_together(*processes: LinkbridgeProcess, staggered: bool = False) -> Iterator[None]:
    """Start `processes` side by side (each waits for its READY=1 while the others start) and
    stop them side by side on exit: a lab's tunnels start and stop in the time of one. With
    `staggered` each starts once the one before is ready (what it sends at its start then
    finds the others up)."""
    with contextlib.ExitStack() as stack:
        for process in processes:
            process.launch()
            stack.callback(process.stop)
            if staggered:
                process.wait_ready()
        for process in processes:
            if not staggered:
                process.wait_ready()
        try:
            yield
        finally:
            for process in processes:
                process.terminate()
