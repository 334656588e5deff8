"""Running tunnels for months: retries of tunnels that fail, reloads that touch only what
changed, and what systemd is told.

The Supervisor runs in the main thread. It starts every job (a tunnel the command line or the
config file asked for), then loops: each tunnel's runner follows its link (up / stale / down
from the time since its last received frame); what failed is restarted with backoff (when the
policy allows), a reload (SIGHUP) is applied, and systemd hears READY=1 once the first start of
every job was attempted, then STATUS= whenever a link state or a retry changes.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pluggy

from linkbridge.errors import LinkbridgeError
from linkbridge.ops.heap import TRIM_INTERVAL, release_free_memory
from linkbridge.ops.notify import sd_notify
from linkbridge.ops.signals import Shutdown
from linkbridge.tunnel.session import Policy, Session, TunnelJob, TunnelRunner
from linkbridge.wire.backoff import Backoff

log = logging.getLogger("linkbridge")

TICK = 0.1  # seconds between looks at links, failures, retries and reloads
FIRST_RETRY = 1.0  # seconds before a failed tunnel is tried again; doubles each time
MAX_RETRY = 60.0


@dataclass
class Retry:
    job: TunnelJob
    backoff: Backoff  # the job's own: each failure in a row waits longer

    @property
    def at(self) -> float:
        return self.backoff.retry_at


def new_backoff() -> Backoff:
    return Backoff(FIRST_RETRY, MAX_RETRY)


class Supervisor:
    """Runs a set of tunnel jobs until a signal; see the module docstring."""

    def __init__(self, manager: pluggy.PluginManager, policy: Policy) -> None:
        self._manager = manager
        self._policy = policy
        self.runners: dict[str, TunnelRunner] = {}
        self.retries: dict[str, Retry] = {}
        self._status = ""

    def run(self, jobs: Sequence[TunnelJob], reload_requested: threading.Event | None = None,
            reload: Callable[[], Sequence[TunnelJob]] | None = None,
            started: Callable[[], None] | None = None) -> None:
        """Start `jobs`, call `started` (dropping root), then watch them until Shutdown (or,
        without retries, a failure); everything is stopped on the way out."""
        reason = "failed"
        try:
            for job in jobs:
                self._start(job, new_backoff(), announce=started is None)
            if started is not None:
                started()
                for runner in list(self.runners.values()):
                    self._announce(runner, new_backoff())
            sd_notify("READY=1")
            next_trim = time.monotonic() + TRIM_INTERVAL
            while True:
                if reload_requested is not None and reload_requested.wait(TICK):
                    reload_requested.clear()
                    if reload is not None:
                        self._reload(reload)
                    else:
                        log.warning("reload asked for (SIGHUP), but these tunnels come from "
                                    "the command line, not a config file: nothing to re-read")
                elif reload_requested is None:
                    time.sleep(TICK)
                now = time.monotonic()
                self._poll(now)
                self._notify_status()
                if now >= next_trim:  # keeps RSS flat over days of traffic
                    release_free_memory()
                    next_trim = now + TRIM_INTERVAL
        except Shutdown as stop:
            reason = str(stop)
            raise
        finally:
            sd_notify("STOPPING=1")
            self.retries.clear()
            for runner in reversed(list(self.runners.values())):
                with contextlib.suppress(LinkbridgeError):
                    runner.stop(reason)
            self.runners.clear()

    def _start(self, job: TunnelJob, backoff: Backoff, announce: bool = True) -> None:
        """Make a tunnel (and announce it unless told not to: root is dropped first);
        `backoff` times its retry if it fails."""
        runner = TunnelRunner(job, self._manager, self._policy)
        try:
            runner.open()
        except LinkbridgeError as exc:
            self._failed(job, exc, backoff)
            return
        self.runners[job.key] = runner
        if announce:
            self._announce(runner, backoff)

    def _announce(self, runner: TunnelRunner, backoff: Backoff) -> None:
        try:
            runner.announce()
        except LinkbridgeError as exc:
            del self.runners[runner.job.key]
            self._failed(runner.job, exc, backoff)

    def _failed(self, job: TunnelJob, exc: LinkbridgeError, backoff: Backoff) -> None:
        """A tunnel that failed to start or whose data path failed: retry it, or give up."""
        if not self._policy.retry:
            raise exc
        where = job.key or "tunnel"
        if self._policy.user is not None:
            log.error("%s failed: %s; not retried: since --user %s the process cannot create "
                      "TUN devices (restart the service)", where, exc, self._policy.user)
            return
        delay = backoff.failed(time.monotonic())
        log.error("%s failed: %s; retrying in %g s", where, exc, delay)
        self.retries[job.key] = Retry(job, backoff)

    def _poll(self, now: float) -> None:
        for key, runner in list(self.runners.items()):
            try:
                runner.poll(now)
            except LinkbridgeError as exc:
                del self.runners[key]
                runner.stop(f"failed: {exc}")
                self._failed(runner.job, exc, new_backoff())
        for key, retry in list(self.retries.items()):
            if now >= retry.at:
                del self.retries[key]
                self._start(retry.job, retry.backoff)

    def _reload(self, reload: Callable[[], Sequence[TunnelJob]]) -> None:
        """Apply a re-read config: removed tunnels stop, added ones start, changed ones restart,
        unchanged ones are not touched. A config that does not load changes nothing."""
        try:
            jobs = {job.key: job for job in reload()}
        except LinkbridgeError as exc:
            log.error("reload: %s; the running tunnels are kept as they are", exc)
            return
        current = {**{key: r.job for key, r in self.runners.items()},
                   **{key: r.job for key, r in self.retries.items()}}
        removed = [key for key in current if key not in jobs]
        changed = [key for key in current if key in jobs and jobs[key].settings
                   != current[key].settings]
        added = [key for key in jobs if key not in current]
        retuned = [key for key in changed if self._retune(key, jobs[key])]
        changed = [key for key in changed if key not in retuned]
        if self._policy.user is not None and (changed or added):
            log.error("reload: cannot start %s: since --user %s the process cannot create TUN "
                      "devices; only removals are applied (restart the service for the rest)",
                      ", ".join(changed + added), self._policy.user)
            changed, added = [], []
        log.info("reload: %d added, %d removed, %d changed, %d with new peers, %d unchanged",
                 len(added), len(removed), len(changed), len(retuned),
                 len(current) - len(removed) - len(changed) - len(retuned))
        for key in removed + changed:
            self.retries.pop(key, None)
            runner = self.runners.pop(key, None)
            if runner is not None:
                runner.stop("removed by reload" if key in removed else "changed by reload")
        for key in changed + added:
            self._start(jobs[key], new_backoff())

    def _retune(self, key: str, job: TunnelJob) -> bool:
        """Give a running multipoint tunnel whose reload changed only its peers the new ones
        in place (TunnelRunner.retune); False when it must restart instead."""
        runner = self.runners.get(key)
        if runner is None:
            return False
        try:
            return runner.retune(job)
        except LinkbridgeError as exc:
            log.error("reload: %s: new peers not applied in place (%s); restarting it", key,
                      exc)
            return False

    def status_line(self) -> str:
        """systemd's STATUS=: every tunnel's link state, and which tunnels wait for a retry."""
        parts = [f"{runner.name} link {runner.link_state()}" for runner in self.runners.values()]
        parts += [f"{key or 'tunnel'} failed, retrying" for key in self.retries]
        return "; ".join(parts) or "no tunnels"

    def _notify_status(self) -> None:
        line = self.status_line()
        if line != self._status:
            self._status = line
            sd_notify(f"STATUS={line}")



def serve(session: Session, manager: pluggy.PluginManager) -> None:
    """Run one opened tunnel (its undo belongs to the caller) until a signal or a failure."""
    Supervisor(manager, Policy()).run([TunnelJob("", lambda stack: session)])
