"""Running one tunnel session in the foreground: start the data path, wait, report, tear down."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import pluggy

from linkbridge.datapath.bridge import Bridge
from linkbridge.datapath.endpoint import Endpoint
from linkbridge.ops.heap import TRIM_INTERVAL, release_free_memory
from linkbridge.ops.notify import sd_notify
from linkbridge.ops.signals import Shutdown
from linkbridge.plugin.tunnel_info import TunnelInfo

log = logging.getLogger("linkbridge")


def serve(tunnel_side: Endpoint, link_side: Endpoint, info: TunnelInfo,
          manager: pluggy.PluginManager) -> None:
    """Move packets until SIGINT/SIGTERM or a fatal link error, then log the counters.

    The caller owns both endpoints and the device; this only runs and stops the data path.
    """
    serve_all([Session(tunnel_side, link_side, info)], manager)


@dataclass(frozen=True)
class Session:
    """One tunnel to run: its device side, its link side and what it tells plugins."""

    tunnel_side: Endpoint
    link_side: Endpoint
    info: TunnelInfo


def serve_all(sessions: Sequence[Session], manager: pluggy.PluginManager) -> None:
    """Run every session's data path until a signal, or until one of them fails for good.

    READY=1 goes to systemd once all of them move packets; a fatal error in one stops all
    (a supervisor restarts the whole set) and is re-raised after every session is down.
    """
    bridges = [Bridge(s.tunnel_side, s.link_side) for s in sessions]
    started: list[Session] = []
    try:
        for session, bridge in zip(sessions, bridges, strict=True):
            manager.hook.linkbridge_tunnel_up(tunnel=session.info)
            started.append(session)
            bridge.start()
            info = session.info
            log.info("%s up: mtu %d, routes %s, link %s", info.device, info.mtu,
                     ", ".join(info.routes) or "none", info.link)
        sd_notify("READY=1")
        next_trim = time.monotonic() + TRIM_INTERVAL
        while not any(bridge.stop.wait(0.5 / len(bridges)) for bridge in bridges):
            if time.monotonic() >= next_trim:  # keeps RSS flat over days of traffic
                release_free_memory()
                next_trim += TRIM_INTERVAL
        for bridge in bridges:
            if bridge.stop.is_set():
                bridge.wait()  # re-raises the fatal error that stopped it
    except Shutdown as stop:
        log.info("%s: %s, tearing down", ", ".join(s.info.device for s in sessions), stop)
    finally:
        sd_notify("STOPPING=1")
        for bridge in bridges:
            bridge.close()
        for session in started:
            manager.hook.linkbridge_tunnel_down(tunnel=session.info)
        for session in sessions:
            for endpoint in (session.tunnel_side, session.link_side):
                log.info("%s counters %s: %s", session.info.device, endpoint.name,
                         endpoint.counters.as_dict())
