"""Opening a planned pipeline (datapath/pipeline.py) as a Session: under a TUN device made here
(`up`), or under local ports serving an external tunnel (`link --rx --tx`)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging

from linkbridge.datapath.pipeline import LinkBelow, Plan, build, link_mtu, route_metrics
from linkbridge.plugin.link import Link
from linkbridge.plugin.tunnel_info import TunnelInfo
from linkbridge.tunnel.session import Session
from linkbridge.tunnel.setup import TunnelSpec, open_tun_tunnel
from linkbridge.wire.offload import offload_attempts, single_run_packet

log = logging.getLogger("linkbridge")


def open_tunnel(spec: TunnelSpec, plan: Plan, stack: contextlib.ExitStack) -> Session:
    """Create the TUN device `spec` (with a virtio_net_hdr when the plan runs the offload
    layer), then the pipeline below it; every undo goes on `stack`."""
    frame = plan.offload_frame
    flags = plan.description.upper.offload.flags
    # super-packets whose chunks one GSO send carries: one system call per packet on each side
    tun = open_tun_tunnel(spec, stack, None if frame is None else offload_attempts(flags),
                          route_metrics(plan), None if frame is None else single_run_packet(frame))
    info = TunnelInfo(device=tun.name, mtu=spec.mtu, addresses=tuple(map(str, spec.addresses)),
                      routes=tuple(map(str, spec.remotes)), link="")
    links = plan.description.links
    for lower in (plan.description.lower, *(links.others if links else ())):
        below = lower.below
        if isinstance(below, LinkBelow) and isinstance(below.link, Link):
            below.link.attach_tunnel(dataclasses.replace(info, link=below.link.name))
    opened = build(plan, stack, tun)
    log.debug("%s: %s", tun.name, " -> ".join(plan.layers))
    info = dataclasses.replace(info, link=opened.link_side.name)
    return Session(opened.tunnel_side, opened.link_side, info, opened.check, opened.scheduler)


def open_link(plan: Plan, stack: contextlib.ExitStack) -> Session:
    """The pipeline under local ports (the plan's side above); every undo goes on `stack`."""
    opened = build(plan, stack)
    log.debug("%s: %s", opened.tunnel_side.name, " -> ".join(plan.layers))
    info = TunnelInfo(device=opened.tunnel_side.name, mtu=link_mtu(plan.description) or 0,
                      addresses=(), routes=(), link=opened.link_side.name)
    return Session(opened.tunnel_side, opened.link_side, info, opened.check)
