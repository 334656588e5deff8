"""Tunnel counters as Prometheus / OpenMetrics text, and an HTTP endpoint that serves them.

The text is made from the tunnels' typed status (`ops.status.collect_status()`), one series
per tunnel side and direction. Labels: `tunnel` (the device), `pid` (two lab tunnels in different
namespaces may share a device name), `link` (the link URL), `side` (`tunnel`: the device,
`link`: the link), `direction` (`rx`/`tx`, as seen by that side) and `reason` for drops.
"""

from __future__ import annotations

import contextlib
import http.server
import logging
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from linkbridge.errors import ConfigError, LinkbridgeError
from linkbridge.ops.status_data import PEER_SIDE, Repair, TunnelStatus

log = logging.getLogger("linkbridge")

DEFAULT_METRICS_HOST = "127.0.0.1"
OPENMETRICS_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
Source = Callable[[], Sequence[TunnelStatus]]  # the status of every tunnel, read afresh

# name, type, help; counters get `_total` on their samples
FAMILIES = (
    ("linkbridge_packets", "counter", "Packets through a tunnel side, per direction."),
    ("linkbridge_bytes", "counter", "Bytes through a tunnel side, per direction."),
    ("linkbridge_drops", "counter", "Packets a tunnel side dropped, by reason."),
    ("linkbridge_repair", "counter",
     "Frames the loss-repair layer sent again, rebuilt, gave up or received twice, by event."),
    ("linkbridge_mtu_bytes", "gauge", "The tunnel MTU."),
    ("linkbridge_peer_up", "gauge",
     "1 while a peer of a multipoint tunnel is up (its frames arrive), else 0."),
    ("linkbridge_start_time_seconds", "gauge", "When the tunnel started (Unix time)."),
)


def escape(value: str) -> str:
    """A label value as the exposition formats quote it."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: Mapping[str, object]) -> str:
    return "{" + ",".join(f'{key}="{escape(str(value))}"' for key, value in pairs.items()) + "}"


def _samples(tunnels: Sequence[TunnelStatus]) -> dict[str, list[str]]:
    """Sample lines (without the family header) of each family, for every tunnel."""
    samples: dict[str, list[str]] = {name: [] for name, _, _ in FAMILIES}
    for tunnel in tunnels:
        names = {"tunnel": tunnel.device, "pid": tunnel.pid, "link": tunnel.link}
        for side, counters in tunnel.sides():
            for direction, packets, size in (("rx", counters.rx_packets, counters.rx_bytes),
                                             ("tx", counters.tx_packets, counters.tx_bytes)):
                labels = _labels({**names, "side": side, "direction": direction})
                samples["linkbridge_packets"].append(f"linkbridge_packets_total{labels} {packets}")
                samples["linkbridge_bytes"].append(f"linkbridge_bytes_total{labels} {size}")
            for reason, count in sorted(counters.drops.items()):
                labels = _labels({**names, "side": side, "reason": reason})
                samples["linkbridge_drops"].append(f"linkbridge_drops_total{labels} {count}")
            repair = next((layer.repair for layer in counters.stack() if layer.repair), None)
            for event in Repair.COUNTERS if repair else ():
                labels = _labels({**names, "side": side, "event": event})
                samples["linkbridge_repair"].append(
                    f"linkbridge_repair_total{labels} {getattr(repair, event)}")
        for side, state in tunnel.link_states.items():
            if side.startswith(PEER_SIDE):
                labels = _labels({**names, "side": side})
                samples["linkbridge_peer_up"].append(
                    f"linkbridge_peer_up{labels} {int(state == 'up')}")
        labels = _labels(names)
        samples["linkbridge_mtu_bytes"].append(f"linkbridge_mtu_bytes{labels} {tunnel.mtu}")
        samples["linkbridge_start_time_seconds"].append(
            f"linkbridge_start_time_seconds{labels} {tunnel.started}")
    return samples


def exposition(tunnels: Sequence[TunnelStatus], openmetrics: bool = False) -> str:
    """The counters of `tunnels` in the Prometheus text format 0.0.4, or in OpenMetrics 1.0
    (counter families named without `_total`, ending with `# EOF`)."""
    samples = _samples(tunnels)
    lines = []
    for name, kind, text in FAMILIES:
        family = name if openmetrics or kind != "counter" else f"{name}_total"
        lines += [f"# HELP {family} {text}", f"# TYPE {family} {kind}", *samples[name]]
    if openmetrics:
        lines.append("# EOF")
    return "\n".join(lines) + "\n"


def parse_listen(text: str) -> tuple[str, int]:
    """`[ADDR:]PORT` (an IPv6 ADDR in brackets) as (host, port); ADDR defaults to loopback."""
    host, sep, port_text = text.rpartition(":")
    host = host.strip("[]") if sep else DEFAULT_METRICS_HOST
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"--metrics {text!r}: expected [ADDR:]PORT with PORT in 1-65535")
    return host or DEFAULT_METRICS_HOST, int(port_text)


def wants_openmetrics(accept: str) -> bool:
    """Whether a scraper's Accept header asks for OpenMetrics."""
    return "application/openmetrics-text" in accept


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], source: Source) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.source = source
        super().__init__(address, _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # the name http.server calls
        if self.path.split("?")[0] not in ("/metrics", "/"):
            self.send_error(404, "only /metrics here")
            return
        openmetrics = wants_openmetrics(self.headers.get("Accept", ""))
        body = exposition(self.server.source(), openmetrics).encode()
        self.send_response(200)
        self.send_header("Content-Type", OPENMETRICS_TYPE if openmetrics else PROMETHEUS_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # http.server's names
        log.debug("metrics: " + format, *args)


@contextlib.contextmanager
def serve_metrics(listen: str, source: Source) -> Iterator[tuple[str, int]]:
    """Serve `exposition(source())` over HTTP at `listen` ([ADDR:]PORT) while the block runs;
    yields the bound (host, port)."""
    address = parse_listen(listen)
    try:
        server = _Server(address, source)
    except OSError as exc:
        raise LinkbridgeError(f"--metrics {listen}: cannot listen on "
                              f"{address[0]}:{address[1]}: {exc.strerror or exc}") from None
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield str(host), int(port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
