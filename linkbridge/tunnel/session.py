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
from linkbridge.datapath.multipoint import PeerRouter
from linkbridge.datapath.peerlinks import LinkWatch
from linkbridge.datapath.pipeline import Plan, peer_opener, route_metrics
from linkbridge.errors import PluginError, TunnelError
from linkbridge.ops.hooks import Hooks
from linkbridge.ops.status import publish_status
from linkbridge.plugin.registry import LinkRegistry
from linkbridge.plugin.tunnel_info import TunnelInfo
from linkbridge.tunnel.peerwatch import PeerWatch, peer_environment
from linkbridge.tunnel.setup import change_routes
from linkbridge.wire import drops
from linkbridge.wire.liveness import Change, LinkState, Liveness, Thresholds
from linkbridge.wire.packet import packet_problem
from linkbridge.wire.peers import Peer

log = logging.getLogger("linkbridge")


@dataclass(frozen=True)
class Session:
    """One opened tunnel: its device side, its link side and what it tells plugins."""

    tunnel_side: Endpoint
    link_side: Endpoint
    info: TunnelInfo
    check: Check = packet_problem  # what a frame towards the tunnel side must pass
    scheduler: LinkWatch | None = None  # several links (docs/multilink.md): what they show


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
    plan: Callable[[], Plan] | None = None  # plans it again: a reload's new peers


def peers_only(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether two settings differ in their peers (`peer`) and in nothing else."""
    return old.get("peer") != new.get("peer") and \
        {key: value for key, value in old.items() if key != "peer"} == \
        {key: value for key, value in new.items() if key != "peer"}


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


class HookWorker:
    """Runs link-up/link-down hooks (and a multipoint tunnel's peer-up/peer-down hooks) one
    after another in a thread, in the order of the changes, so a slow hook never holds up the
    supervisor's loop.

    `link-up` runs when the link turns up, `link-down` when a link that was up turns down;
    `stale` (a warning in the log and in `status`) runs neither. The same for each peer, with
    the peer in the environment (tunnel/peerwatch.py).
    """

    def __init__(self, hooks: Hooks, info: TunnelInfo) -> None:
        self._hooks = hooks
        self._info = info
        self._announced: dict[str, LinkState] = {}  # the state the last hook told of, by peer
        self._queue: queue.Queue[tuple[Change, Peer | None] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=f"hooks-{info.device}",
                                        daemon=True)
        self._thread.start()

    def put(self, change: Change, peer: Peer | None = None) -> None:
        """A change of the link's state, or of `peer`'s."""
        key = "" if peer is None else peer.name
        if change.new != LinkState.STALE and \
                change.new != self._announced.get(key, LinkState.DOWN):
            self._announced[key] = change.new
            self._queue.put((change, peer))

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            change, peer = item
            if peer is None:
                self._hooks.run(f"link-{change.new}", self._info, change.reason, change.new)
            else:
                self._hooks.run(f"peer-{change.new}", self._info, change.reason,
                                extra=peer_environment(peer, change.new))

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
        self._link_hooks: HookWorker | None = None
        self._each_link_hooks: dict[str, HookWorker] = {}  # several links: by link name
        self.peers: PeerWatch | None = None  # a multipoint tunnel's peers' liveness
        self._peer_hooks: HookWorker | None = None
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
            router = session.link_side if isinstance(session.link_side, PeerRouter) else None
            if self.job.keepalive:  # a multipoint tunnel's go to each peer (datapath/keepalive)
                tunnel_side = self._keepalive = KeepaliveSource(
                    tunnel_side, self.job.keepalive, steady=router is not None)
            self.liveness = Liveness(self.job.thresholds, time.monotonic())
            if router is not None:
                self.peers = PeerWatch(router, self.job.thresholds)
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
                self._link_hooks = HookWorker(self.job.hooks, info)
                self._stack.callback(self._link_hooks.close)
            elif self.job.hooks.has_link_hooks and session.scheduler is not None:
                for lower in session.scheduler.lowers:
                    worker = HookWorker(self.job.hooks,
                                        dataclasses.replace(info, link=lower.name))
                    self._each_link_hooks[lower.name] = worker
                    self._stack.callback(worker.close)
            if self.job.hooks.has_peer_hooks and self.peers is not None:
                self._peer_hooks = HookWorker(self.job.hooks, info)
                self._stack.callback(self._peer_hooks.close)
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
        if self.peers is not None:
            for peer, change in self.peers.observe(now):
                log_change = log.warning if change.new == "down" else log.info
                log_change("%s: peer %s %s -> %s (%s)", self.name, peer.name, change.old,
                           change.new, change.reason)
                if self._peer_hooks is not None:
                    self._peer_hooks.put(change, peer)
        if self.session.scheduler is not None:
            for name, change in self.session.scheduler.link_changes():
                log_change = log.warning if change.new == "down" else log.info
                log_change("%s: link %s: %s -> %s (%s)", self.name, name, change.old,
                           change.new, change.reason)
                if name in self._each_link_hooks:
                    self._each_link_hooks[name].put(change)

    def retune(self, job: TunnelJob) -> bool:
        """Take `job`, a reload of this multipoint tunnel that changed only its peers, without
        a restart: the router serves the new peer table (the peers given as before go on
        untouched), the device routes the new prefixes and no longer the removed ones. False
        (nothing changed) when the tunnel is not a running multipoint tunnel."""
        if self.peers is None or self.session is None or job.plan is None \
                or not peers_only(self.job.settings, job.settings):
            return False
        plan = job.plan()
        table = plan.description.peers
        if table is None:
            return False
        router = self.peers.router
        before, after = set(router.table.prefixes()), set(table.prefixes())
        new_routes = sorted(after - before, key=str)
        change_routes(self.name, new_routes, (), route_metrics(plan))  # nothing changed yet
        try:
            added, removed = router.update(table, peer_opener(plan, router.handshakes,
                                                              router.top))
        except BaseException:
            change_routes(self.name, (), new_routes)
            raise
        change_routes(self.name, (), sorted(before - after, key=str))
        self.job = job
        log.info("%s: peers changed by reload: %s added, %s removed", self.name,
                 ", ".join(peer.name for peer in added) or "none",
                 ", ".join(peer.name for peer in removed) or "none")
        return True

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
            **({"peer_states": self.peers.status(now)} if self.peers is not None else {}),
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
            self.peers, self._peer_hooks = None, None
            self._each_link_hooks = {}
            self.announced = False
            if session is not None:
                for endpoint in (session.tunnel_side, session.link_side):
                    log.info("%s counters %s: %s", session.info.device, endpoint.name,
                             endpoint.counters.as_dict())


