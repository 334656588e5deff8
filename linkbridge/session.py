"""Running one tunnel session in the foreground: start the data path, wait, report, tear down."""

from __future__ import annotations

import logging

import pluggy

from linkbridge.datapath import Bridge
from linkbridge.endpoint import Endpoint
from linkbridge.notify import sd_notify
from linkbridge.signals import Shutdown
from linkbridge.tunnel_info import TunnelInfo

log = logging.getLogger("linkbridge")


def serve(tunnel_side: Endpoint, link_side: Endpoint, info: TunnelInfo,
          manager: pluggy.PluginManager) -> None:
    """Move packets until SIGINT/SIGTERM or a fatal link error, then log the counters.

    The caller owns both endpoints and the device; this only runs and stops the data path.
    """
    bridge = Bridge(tunnel_side, link_side)
    manager.hook.linkbridge_tunnel_up(tunnel=info)
    try:
        bridge.start()
        log.info("%s up: mtu %d, routes %s, link %s", info.device, info.mtu,
                 ", ".join(info.routes) or "none", info.link)
        sd_notify("READY=1")
        bridge.wait()
    except Shutdown as stop:
        log.info("%s: %s, tearing down", info.device, stop)
    finally:
        sd_notify("STOPPING=1")
        bridge.close()
        manager.hook.linkbridge_tunnel_down(tunnel=info)
        for endpoint in (tunnel_side, link_side):
            log.info("%s counters %s: %s", info.device, endpoint.name,
                     endpoint.counters.as_dict())
