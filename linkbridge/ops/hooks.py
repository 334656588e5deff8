"""Command hooks (`--on-up`, `--on-down`, `--on-link-up`, `--on-link-down`, `--on-peer-up`,
`--on-peer-down`): shell commands run when a tunnel comes up or goes down, when its link's
state changes and when a peer of a multipoint tunnel turns up or down.

A hook runs through `/bin/sh -c` as the user the process runs as (after `--user`, that user:
root is gone for good), with what it is about in LINKBRIDGE_* environment variables. It may run
for `timeout` seconds; then its whole process group is killed. Its output goes to the log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import stat
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass

from linkbridge.errors import ConfigError
from linkbridge.ops.signals import signals_held
from linkbridge.plugin.tunnel_info import TunnelInfo

log = logging.getLogger("linkbridge")

EVENTS = ("up", "down", "link-up", "link-down", "peer-up", "peer-down")
DEFAULT_TIMEOUT = 10.0  # seconds
SIGNAL_CHECK = 0.1  # seconds between two looks at signals taken by another thread
OUTPUT_LIMIT = 4000  # characters of a hook's output kept for the log


@dataclass(frozen=True)
class HookResult:
    """How a hook ended: its exit status (negative: killed by that signal), whether it was
    killed for running too long, and the tail of its output."""

    command: str
    returncode: int
    timed_out: bool
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def describe(self) -> str:
        if self.timed_out:
            return "killed after running too long"
        if self.returncode < 0:
            return f"killed by {signal.Signals(-self.returncode).name}"
        return f"exit code {self.returncode}"


@dataclass(frozen=True)
class Hooks:
    """The commands of one tunnel, by event (one of EVENTS)."""

    commands: Mapping[str, str]
    timeout: float = DEFAULT_TIMEOUT

    @property
    def has_link_hooks(self) -> bool:
        return bool(self.commands.get("link-up") or self.commands.get("link-down"))

    @property
    def has_peer_hooks(self) -> bool:
        return bool(self.commands.get("peer-up") or self.commands.get("peer-down"))

    def run(self, event: str, info: TunnelInfo, reason: str,
            link_state: str | None = None, extra: Mapping[str, str] | None = None
            ) -> HookResult | None:
        """Run the hook of `event` if one is set, with `extra` in its environment (a peer's
        LINKBRIDGE_PEER*); a failure is logged (with its exit code) and returned, never
        raised."""
        command = self.commands.get(event)
        if not command:
            return None
        env = {**hook_environment(event, info, reason, link_state), **(extra or {})}
        result = run_command(command, env, self.timeout)
        for line in result.output.splitlines():
            log.info("%s: on-%s: %s", info.device, event, line)
        if result.ok:
            log.info("%s: on-%s hook done", info.device, event)
        else:
            log.error("%s: on-%s hook failed (%s): %s", info.device, event, result.describe(),
                      command)
        return result


def hook_environment(event: str, info: TunnelInfo, reason: str,
                     link_state: str | None) -> dict[str, str]:
    """The process environment plus what a hook is about."""
    env = dict(os.environ)
    env.update({
        "LINKBRIDGE_EVENT": event,
        "LINKBRIDGE_DEVICE": info.device,
        "LINKBRIDGE_MTU": str(info.mtu),
        "LINKBRIDGE_ADDRESSES": " ".join(info.addresses),
        "LINKBRIDGE_ROUTES": " ".join(info.routes),
        "LINKBRIDGE_LINK": info.link,
        "LINKBRIDGE_REASON": reason,
        "LINKBRIDGE_LINK_STATE": link_state or "",
    })
    return env


def run_command(command: str, env: Mapping[str, str], timeout: float) -> HookResult:
    """Run `command` with /bin/sh in a session of its own; kill the session after `timeout`."""
    try:
        process = _start_shell(command, env)
    except OSError as exc:
        return HookResult(command, 127, False, f"cannot run /bin/sh: {exc.strerror}")
    try:
        output, timed_out = _wait(process, timeout)
    except BaseException:  # SIGTERM (Shutdown) while the hook ran: it goes too
        _stop(process)
        raise
    text = output.decode(errors="replace")[-OUTPUT_LIMIT:]
    return HookResult(command, process.returncode, timed_out, text)


def _start_shell(command: str, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """/bin/sh running `command` in a session of its own. A SIGTERM that comes while it starts
    is held until Popen has returned (raised inside it, it lost the shell, which ran on after
    the tunnel had gone), and its Shutdown then stops the shell."""
    process: subprocess.Popen[bytes] | None = None
    try:
        with signals_held():
            process = subprocess.Popen(
                ["/bin/sh", "-c", command], env=dict(env), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    except BaseException:
        if process is not None:
            _stop(process)
        raise
    return process


def _wait(process: subprocess.Popen[bytes], timeout: float) -> tuple[bytes, bool]:
    """The hook's output once its shell ends, and whether `timeout` ended it (its session
    killed). Waits in slices of SIGNAL_CHECK: the kernel may hand a SIGTERM to another of the
    tunnel's threads, and Python runs the handler only when this thread runs Python again."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            output, _ = process.communicate(timeout=min(left, SIGNAL_CHECK))
        except subprocess.TimeoutExpired:
            continue  # (no output is lost: communicate() goes on where it stopped)
        return output, False
    _kill(process)
    output, _ = process.communicate()
    return output, True


def _kill(process: subprocess.Popen[bytes]) -> None:
    """Kill the hook's shell and whatever it started (its session's process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Kill the hook's session and reap its shell."""
    _kill(process)
    process.wait()


def check_hook_source(path: str) -> None:
    """Refuse hooks from a config file that someone else could have written: it must belong
    to root or to this user and be writable by neither group nor others."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise ConfigError(f"cannot check config file {path}: {exc.strerror}") from None
    if info.st_uid not in (0, os.geteuid()):
        raise ConfigError(f"{path}: hooks refused: the file belongs to uid {info.st_uid}, "
                          f"not to root or to this user")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError(f"{path}: hooks refused: the file is writable by group or others "
                          f"(chmod go-w {path})")
