"""One tunnel of a long-running process: what to run (TunnelJob), and the runner that opens it,
starts its data path, runs its hooks, follows its link's liveness and undoes it all."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy

from linkbridge.datapath.bridge import Bridge, Check
from linkbridge.datapath.endpoint import Endpoint
from linkbridge.datapath.keepalive import KeepaliveSource
from linkbridge.datapath.multilink import LinkScheduler
from linkbridge.errors import PluginError, TunnelError
from linkbridge.ops.hooks import Hooks
from linkbridge.ops.status import publish_status
from linkbridge.plugin.registry import LinkRegistry
from linkbridge.plugin.tunnel_info import TunnelInfo
from linkbridge.wire import drops
from linkbridge.wire.liveness import Change, LinkState, Liveness, Thresholds
from linkbridge.wire.packet import packet_problem

log = logging.getLogger("linkbridge")


@dataclass(frozen=True)
class Session:
    """One opened tunnel: its device side, its link side and what it tells plugins."""

    tunnel_side: Endpoint
    link_side: Endpoint
    info: TunnelInfo
    check: Check = packet_problem  # what a frame towards the tunnel side must pass
    scheduler: LinkScheduler | None = None  # several links (docs/multilink.md): their scheduler


Opener = Callable[[contextlib.ExitStack], Session]


@dataclass(frozen=True)
class TunnelJob:
    """A tunnel to run. `key` names it across reloads (its device name, else its place in the
    file); `settings` are compared on reload: equal settings leave it running untouched.
    `open` creates it, putting every undo on the stack it is given."""

    key: str
    open: Opener
    settings: Mapping[str, Any] = field(default_factory=dict)
    hooks: Hooks = field(default_factory=lambda: Hooks({}))
    keepalive: float | None = None
    thresholds: Thresholds = field(default_factory=lambda: Thresholds.choose(None, None))


@dataclass(frozen=True)
class Policy:
    """What the supervisor may do about failures and reloads.

    `retry`: a tunnel that fails to start, or whose data path fails, is retried with backoff
    while the others run (else the failure stops every tunnel and is raised). `user`: the
    account root was dropped to; the process then cannot create TUN devices, so nothing is
    (re)started after the first start. `owner`: uid/gid the status sockets belong to.
    """

    retry: bool = False
    user: str | None = None
    owner: tuple[int, int] | None = None
    config: str | None = None  # the config file the tunnels come from (shown by `status`)


class LinkHookWorker:
    """Runs link-up/link-down hooks one after another in a thread, in the order of the
    changes, so a slow hook never holds up the supervisor's loop.

    `link-up` runs when the link turns up, `link-down` when a link that was up turns down;
    `stale` (a warning in the log and in `status`) runs neither.
    """

    def __init__(self, hooks: Hooks, info: TunnelInfo) -> None:
        self._hooks = hooks
        self._info = info
        self._announced = LinkState.DOWN  # the state the last hook told of
        self._queue: queue.Queue[Change | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=f"hooks-{info.device}",
                                        daemon=True)
        self._thread.start()

    def put(self, change: Change) -> None:
        if change.new != LinkState.STALE and change.new != self._announced:
            self._announced = change.new
            self._queue.put(change)

    def _run(self) -> None:
        while (change := self._queue.get()) is not None:
            self._hooks.run(f"link-{change.new}", self._info, change.reason, change.new)

    def close(self) -> None:
        """Let the running hook finish (it is killed at its timeout) and skip the rest."""
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        self._queue.put(None)
        self._thread.join()


class TunnelRunner:
    """One running tunnel: made by open() then announce(), watched by poll(), undone by
    stop(). Between the two steps of a start the process may drop root (`--user`), so hooks
    always run as the user the process runs as for the rest of its life."""

    def __init__(self, job: TunnelJob, manager: pluggy.PluginManager, policy: Policy) -> None:
        self.job = job
        self._manager = manager
        self._policy = policy
        self._stack = contextlib.ExitStack()
        self.session: Session | None = None
        self.liveness: Liveness | None = None
        self._bridge: Bridge | None = None
        self._keepalive: KeepaliveSource | None = None
        self._link_hooks: LinkHookWorker | None = None
        self._each_link_hooks: dict[str, LinkHookWorker] = {}  # several links: by link name
        self.announced = False  # the on-up hook ran: on-down runs at stop()

    @property
    def name(self) -> str:
        return self.session.info.device if self.session else self.job.key

    def open(self) -> None:
        """Open the tunnel and start its data path (what needs root); on a failure
        everything made is undone before the error is raised."""
        stack = self._stack
        try:
            session = self.session = self.job.open(stack)
            tunnel_side: Endpoint = session.tunnel_side
            if self.job.keepalive:
                tunnel_side = self._keepalive = KeepaliveSource(tunnel_side, self.job.keepalive)
            self.liveness = Liveness(self.job.thresholds, time.monotonic())
            uid, gid = self._policy.owner or (None, None)
            stack.enter_context(publish_status(session.info, session.tunnel_side,
                                               session.link_side, uid, gid,
                                               extra=self.status_extra,
                                               reasons=self._drop_reasons()))
            bridge = self._bridge = Bridge(tunnel_side, session.link_side, session.check)
            bridge.start()
            stack.callback(bridge.close)
        except BaseException:
            self._undo()
            raise

    def announce(self) -> None:
        """Run the on-up hook (as the user the process runs as by now) and tell plugins; a
        failing hook undoes the tunnel (after its on-down hook) and raises TunnelError."""
        session = self.session
        assert session is not None
        info = session.info
        try:
            result = self.job.hooks.run("up", info, "started")
            if result is not None and not result.ok:
                self.job.hooks.run("down", info, "on-up hook failed")
                raise TunnelError(f"{info.device}: on-up hook failed ({result.describe()}); "
                                  f"tunnel removed")
            self._manager.hook.linkbridge_tunnel_up(tunnel=info)
            self._stack.callback(self._manager.hook.linkbridge_tunnel_down, tunnel=info)
            if self.job.hooks.has_link_hooks and session.scheduler is None:
                self._link_hooks = LinkHookWorker(self.job.hooks, info)
                self._stack.callback(self._link_hooks.close)
            elif self.job.hooks.has_link_hooks and session.scheduler is not None:
                for lower in session.scheduler.lowers:
                    worker = LinkHookWorker(self.job.hooks,
                                            dataclasses.replace(info, link=lower.name))
                    self._each_link_hooks[lower.name] = worker
                    self._stack.callback(worker.close)
        except BaseException:
            self._undo()
            raise
        self.announced = True
        log.info("%s up: mtu %d, routes %s, link %s", info.device, info.mtu,
                 ", ".join(info.routes) or "none", info.link)

    def poll(self, now: float) -> None:
        """Follow the link's state; raise the data path's fatal error if it stopped."""
        if self._bridge is not None and self._bridge.stop.is_set():
            self._bridge.wait()  # re-raises the error that stopped it
            raise TunnelError(f"{self.name}: data path stopped")
        if self.session is None or self.liveness is None:
            return
        change = self.liveness.observe(self.session.link_side.counters.rx_packets, now)
        if change is not None:
            log_change = log.warning if change.new == "down" else log.info
            log_change("%s: link %s -> %s (%s)", self.name, change.old, change.new,
                       change.reason)
            if self._link_hooks is not None:
                self._link_hooks.put(change)
        if self.session.scheduler is not None:
            for name, change in self.session.scheduler.link_changes():
                log_change = log.warning if change.new == "down" else log.info
                log_change("%s: link %s: %s -> %s (%s)", self.name, name, change.old,
                           change.new, change.reason)
                if name in self._each_link_hooks:
                    self._each_link_hooks[name].put(change)

    def link_state(self) -> str:
        return self.liveness.state if self.liveness else "down"

    def _drop_reasons(self) -> Mapping[str, str]:
        """The descriptions of the drop reasons `status` shows: the core's and the installed
        plugins' (only the core's for a tunnel without link plugins, e.g. to local ports)."""
        try:
            return LinkRegistry(self._manager).drop_reasons()
        except PluginError:
            return drops.REASONS

    def status_extra(self) -> dict[str, Any]:
        """What `status` adds for this tunnel: link state, silence, keepalives."""
        liveness = self.liveness
        if liveness is None:
            return {}
        now = time.monotonic()
        silent = liveness.silent_for(now)
        return {
            "link_state": str(liveness.state),
            "link_state_for_s": round(now - liveness.since, 3),
            "last_frame_s": None if silent is None else round(silent, 3),
            "keepalive_s": self.job.keepalive,
            "keepalives_sent": self._keepalive.sent if self._keepalive else 0,
            "config": self._policy.config,
            "config_key": self.job.key,
            **self._links_extra(),
        }

    def _links_extra(self) -> dict[str, Any]:
        """With several links: each link's state and counters, the policy's switches."""
        scheduler = self.session.scheduler if self.session else None
        if scheduler is None:
            return {}
        return {"links": scheduler.link_status(), "link_switches": scheduler.switches,
                **scheduler.reordering()}

    def stop(self, reason: str) -> None:
        """Run the on-down hook, then undo everything (data path, status, link, device)."""
        if self.session is not None:
            log.info("%s: %s, tearing down", self.name, reason)
            if self.announced:
                self.job.hooks.run("down", self.session.info, reason, self.link_state())
        self._undo()

    def _undo(self) -> None:
        session = self.session
        try:
            self._stack.close()
        finally:
            self._stack = contextlib.ExitStack()
            self.session, self._bridge, self._keepalive, self._link_hooks = None, None, None, None
            self._each_link_hooks = {}
            self.announced = False
            if session is not None:
                for endpoint in (session.tunnel_side, session.link_side):
                    log.info("%s counters %s: %s", session.info.device, endpoint.name,
                             endpoint.counters.as_dict())


