"""The simulated medium: one process that half-duplex `sim:` stations attach to over UDP.

It runs the shared channel (channel.py) on the monotonic clock: stations send it their frames,
it decides from their radios' settings when each goes on the air, which collide, and hands the
others every frame that got through, at the time its data ends. Any number of stations can
join (each is a UDP address); it answers a stats request with every station's counters.
Addressed stations (medium_protocol.py) get only the frames for them or for all, each with its
sender's name; a topology (topology.py) says which stations hear which.

    python -m linkbridge_sim.medium --listen 0.0.0.0:47200 [--seed N] [--topology FILE]
    python -m linkbridge_sim.medium --stats 198.18.0.1:47200   # print the counters as JSON
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from linkbridge.plugin import format_address, host_port
from linkbridge_sim.channel import Channel, Readiness
from linkbridge_sim.medium_protocol import (
    DEFAULT_PORT,
    ERROR,
    EVERY_STATION,
    FRAME,
    JOIN,
    JOINED,
    LOST,
    READY,
    STATS,
    address,
    decode_json,
    encode,
    station_name,
    unaddress,
)
from linkbridge_sim.radio import RadioSettings
from linkbridge_sim.topology import Topology, read_topology

log = logging.getLogger("linkbridge")
READ_SIZE = 65536


class Medium:
    """The channel behind one UDP socket; `step()` handles what is due and returns how long
    it may sleep."""

    def __init__(self, sock: socket.socket, seed: int,
                 clock: Callable[[], float] = time.monotonic,
                 topology: Topology | None = None) -> None:
        self.sock = sock
        self.topology = topology
        self.clock = clock
        self.seed = seed
        self.channel = Channel(random.Random(seed))
        self.started = clock()
        self.names: dict[str, str] = {}  # station key (its address) -> the name it gave
        self.settings: dict[str, RadioSettings] = {}
        self.keys: dict[str, str] = {}  # name -> the key of the station that last joined with it
        self.addressed: set[str] = set()  # keys of the stations that send and get addresses
        self.watching: dict[str, Readiness | None] = {}  # stations told their Readiness: last
        self.refused = 0
        self.malformed = 0  # addressed frames without a valid address

    def serve(self) -> None:
        while True:
            self.step()

    def step(self) -> None:
        due = self.channel.next_event()
        timeout = None if due is None else max(0.0, due - self.clock())
        readable, _, _ = select.select([self.sock], [], [], timeout)
        if readable:
            while (item := self._read()) is not None:
                self.handle(*item)
        self._deliver(self.channel.advance(self.clock()))
        self._report()

    def _read(self) -> tuple[bytes, tuple[str, int]] | None:
        try:
            data, source = self.sock.recvfrom(READ_SIZE, socket.MSG_DONTWAIT)
        except (BlockingIOError, ConnectionRefusedError):
            return None
        return data, (source[0], source[1])

    def handle(self, datagram: bytes, source: tuple[str, int]) -> None:
        key = format_address(source)
        kind = datagram[:1]
        if kind in (FRAME, LOST) and key in self.names:
            if key in self.addressed and not _valid(datagram[1:]):
                self.malformed += 1
                return
            self._deliver(self.channel.offer(key, datagram[1:], self.clock(), lost=kind == LOST))
        elif kind in (FRAME, LOST):
            self._refuse(source, "not joined: send a join first")
        elif kind == JOIN:
            self._join(datagram, source, key)
        elif kind == STATS:
            self.sock.sendto(encode(STATS, self.stats()), source)
        else:
            self._refuse(source, f"unknown datagram type {datagram[:1]!r}")

    def _join(self, datagram: bytes, source: tuple[str, int], key: str) -> None:
        try:
            body = decode_json(datagram)
            if not isinstance(body, dict) or not isinstance(body.get("name"), str):
                raise ValueError("a join needs a name")
            name, addressed = body["name"], body.get("addressed", False) is True
            if addressed:
                station_name(name)
            if self.topology is not None and name not in self.topology.stations:
                raise ValueError(f"station {name!r} is not in the medium's topology")
            settings = RadioSettings.from_record(body.get("radio"))
        except ValueError as exc:
            self._refuse(source, f"bad join: {exc}")
            return
        if key not in self.names:
            log.info("medium: station %s joined from %s: %s", name, key, settings.describe())
        self.addressed.discard(key)
        self.watching.pop(key, None)
        if body.get("ready", False) is True:
            self.watching[key] = None
        if addressed:
            self._take_name(key, name)
            self.addressed.add(key)
        self.names[key] = name
        self.keys[name] = key
        self.settings[key] = settings
        self.channel.join(key, settings.radio())
        if self.topology is not None:
            self.channel.reception = self.topology.reception(self.keys)
        self.sock.sendto(encode(JOINED, {"station": key}), source)

    def _take_name(self, key: str, name: str) -> None:
        """`key` is now addressed station `name`: an earlier one of that name (a restarted
        station's old socket) is forgotten and gets nothing more until it joins again."""
        earlier = self.keys.get(name)
        if earlier is not None and earlier != key and earlier in self.addressed:
            log.warning("medium: station %s moved from %s to %s", name, earlier, key)
            self.names.pop(earlier, None)
            self.addressed.discard(earlier)

    def _report(self) -> None:
        """Tell each watching station its Readiness when it changed (medium_protocol.py)."""
        for key, last in self.watching.items():
            if key not in self.names:
                continue
            now = self.channel.readiness(key)
            if now != last:
                self.watching[key] = now
                self._send(encode(READY, {"offered": now.offered, "held": now.held,
                                          "busy": now.busy}), key)

    def _refuse(self, source: tuple[str, int], reason: str) -> None:
        self.refused += 1
        if self.refused <= 10:
            log.warning("medium: refused a datagram from %s: %s", format_address(source), reason)
        self.sock.sendto(ERROR + reason.encode(), source)

    def _deliver(self, deliveries: list[Any]) -> None:
        for delivery in deliveries:
            datagram = self._datagram(delivery.sender, delivery.station, delivery.frame)
            if datagram is None:
                continue
            self._send(datagram, delivery.station)

    def _send(self, datagram: bytes, key: str) -> None:
        try:
            self.sock.sendto(datagram, host_port(key))
        except OSError as exc:  # a station gone away: its loss, not the medium's
            log.debug("medium: sending to %s failed: %s", key, exc)

    def _datagram(self, sender: str, receiver: str, frame: bytes) -> bytes | None:
        """What `receiver` gets of `frame` from `sender`: None when it is no station any
        more, or the frame is addressed to another; for an addressed receiver, with the
        sender's name (a bare sender's HOST:PORT)."""
        if receiver not in self.names:
            return None
        if sender in self.addressed:
            to, frame = unaddress(frame)  # checked when it was offered
            if to not in (EVERY_STATION, self.names[receiver]):
                return None
        if receiver in self.addressed:
            return FRAME + address(self.names[sender] if sender in self.addressed else sender,
                                   frame)
        return FRAME + frame

    def stats(self) -> dict[str, Any]:
        stations = {}
        for key, name in self.names.items():
            settings = self.settings[key]
            stations[key] = {"name": name, "radio": settings.describe(),
                             "duty": settings.duty, "duty_window": settings.duty_window,
                             "persist": settings.persist, "slottime": settings.slottime,
                             "slotwait": settings.slotwait,
                             **self.channel.stats(key).as_dict()}
        return {"seed": self.seed, "elapsed": self.clock() - self.started,
                "malformed": self.malformed, "stations": stations}


def _valid(body: bytes) -> bool:
    try:
        unaddress(body)
    except ValueError:
        return False
    return True


def query_stats(address: tuple[str, int], timeout: float = 2.0) -> dict[str, Any]:
    """Ask the medium at `address` for its counters."""
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect(address)
        sock.send(STATS)
        while True:
            data = sock.recv(READ_SIZE)
            if data[:1] == STATS:
                answer = decode_json(data)
                if isinstance(answer, dict):
                    return answer


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m linkbridge_sim.medium",
        description="the simulated radio medium that `sim:?duplex=half` stations attach to")
    parser.add_argument("--listen", default=f"0.0.0.0:{DEFAULT_PORT}",
                        help=f"UDP HOST:PORT to listen on (default 0.0.0.0:{DEFAULT_PORT})")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the persistence draws (default: a fresh one, logged)")
    parser.add_argument("--topology", metavar="FILE",
                        help="which stations hear which (docs/multipoint.md); default: all "
                             "hear all")
    parser.add_argument("--stats", metavar="HOST:PORT",
                        help="print the counters of the medium at HOST:PORT as JSON and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        if args.stats:
            print(json.dumps(query_stats(host_port(args.stats)), sort_keys=True))
            return 0
        topology = read_topology(args.topology) if args.topology else None
        listen = host_port(args.listen)
        family = socket.AF_INET6 if ":" in listen[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.bind(listen)
    except (ValueError, OSError) as exc:
        print(f"linkbridge_sim.medium: {exc}", file=sys.stderr)
        return 1
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    signal.signal(signal.SIGTERM, _stop)
    medium = Medium(sock, seed, topology=topology)
    log.info("medium: listening on %s, seed %d", format_address(listen), seed)
    print(f"ready {format_address(sock.getsockname()[:2])}", flush=True)
    try:
        medium.serve()
    except (SystemExit, KeyboardInterrupt):
        for key, station in medium.stats()["stations"].items():
            log.info("medium: %s (%s): %s", station["name"], key,
                     {k: v for k, v in station.items() if k not in ("name", "radio")})
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
