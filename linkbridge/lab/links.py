"""Several links in `linkbridge lab` (docs/multilink.md): a veth pair of its own between the
lab's hosts for each link after the first, the links' URLs on them, and the cuts and returns
of links at given times during the run (`--fail-link N@T`, `--restore-link N@T`), done outside
the tunnel processes by setting the link's veth end in host A down and up, with what tunnel A
saw of each (its links' states and which carry traffic) and what the pings lost."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute

from linkbridge.errors import ConfigError
from linkbridge.lab import netns
from linkbridge.lab.probes import PingResult
from linkbridge.lab.topology import UNDERLAY_PREFIX, TwoHosts, unique_tag
from linkbridge.ops.status import read_one, run_dir, socket_name
from linkbridge.plugin.lab import LabPairing, LabSides
from linkbridge.plugin.options import host_port
from linkbridge.plugin.url import LinkUrl

PORT = 47300  # the first link's port plus its number: each link's own UDP port
WATCH_INTERVAL = 0.05  # seconds between looks at tunnel A's links
EVENT_PING_WAIT = 0.1  # seconds a ping waits for its reply while links are cut and restored
LINKS_UP_WAIT = 5.0  # seconds the lab waits for every tunnel to hear each of its links

log = logging.getLogger("linkbridge")


def link_addresses(number: int) -> tuple[str, str]:
    """Host A's and host B's underlay addresses on link `number` (2, 3, ...): 198.18.N.1/.2."""
    return f"198.18.{number}.1", f"198.18.{number}.2"


@contextlib.contextmanager
def link_veth(hosts: TwoHosts, number: int) -> Iterator[tuple[str, str]]:
    """A veth pair for link `number` between the hosts, made in A (nothing of it in the root
    namespace; it goes with the hosts), with link_addresses(); its two names."""
    tag = unique_tag()
    names = (f"lma{number}{tag}"[:15], f"lmb{number}{tag}"[:15])
    with netns.inside(hosts.a), IPRoute() as ipr:
        ipr.link("add", ifname=names[0], kind="veth",
                 peer={"ifname": names[1], "net_ns_fd": hosts.b})
    for host, name, address in zip((hosts.a, hosts.b), names, link_addresses(number),
                                   strict=True):
        with netns.inside(host), IPRoute() as ns:
            index = ns.link_lookup(ifname=name)[0]
            ns.addr("add", index=index, address=address, prefixlen=UNDERLAY_PREFIX)
            ns.link("set", index=index, state="up")
    yield names


def set_veth(host: str, name: str, up: bool) -> None:
    """Cut or restore a link by its veth end in `host` (outside the tunnel processes)."""
    with netns.inside(host), IPRoute() as ns:
        ns.link("set", index=ns.link_lookup(ifname=name)[0], state="up" if up else "down")


@contextlib.contextmanager
def link_urls(link_class: LabPairing, url: LinkUrl, hosts: TwoHosts, number: int
              ) -> Iterator[tuple[LinkUrl, LinkUrl]]:
    """Both ends of link `number` (`url`, made by the class's lab pair) over its own veth pair:
    each bound to its host's address on it and port PORT + number. ConfigError for a link
    whose lab ends are not an address and port on the hosts (a serial cable, a radio medium)."""
    addresses = link_addresses(number)
    sides = LabSides(hosts.a, hosts.b, *addresses, hosts.sides.serial_cable)
    port = PORT + number
    with link_class.lab_pair(url, sides) as pair:
        ends = []
        for index, end in enumerate(pair):
            try:
                host, _ = host_port(end.target)
            except ValueError:
                host = ""
            if host != addresses[1 - index]:
                raise ConfigError(f"--link {url}: the lab cannot run this link beside another "
                                  "(its ends are not an address on each host)")
            ends.append(LinkUrl(end.scheme, f"{host}:{port}",
                                {**end.options, "bind": f"{addresses[index]}:{port}"}))
        yield ends[0], ends[1]


@dataclass(frozen=True)
class LinkEvent:
    """Cut (`up` False) or restore link `number` (1: the first --link) `at` seconds after the
    lab's pings start."""

    number: int
    at: float
    up: bool

    @property
    def label(self) -> str:
        return f"link {self.number} {'restored' if self.up else 'cut'} at {self.at:g} s"


EVENT = re.compile(r"(\d+)@(\d+(?:\.\d*)?|\.\d+)s?")


def parse_events(fails: Sequence[str], restores: Sequence[str], links: int) -> list[LinkEvent]:
    """--fail-link and --restore-link (`N@SECONDS`), in time order; ConfigError for a bad one
    or a link the lab does not have."""
    events = []
    for flag, texts, up in (("--fail-link", fails, False), ("--restore-link", restores, True)):
        for text in texts:
            match = EVENT.fullmatch(text.strip())
            if match is None:
                raise ConfigError(f"{flag} {text!r}: give LINK@SECONDS, e.g. 1@5s")
            number = int(match[1])
            if not 1 <= number <= links:
                raise ConfigError(f"{flag} {text}: the lab has links 1 to {links} (--link)")
            events.append(LinkEvent(number, float(match[2]), up))
    return sorted(events, key=lambda event: event.at)


@dataclass
class Sighting:
    """Tunnel A's view of its links at one moment: each link's state and whether it carries
    traffic, in --link order."""

    at: float
    links: tuple[tuple[str, bool], ...]


@dataclass
class LinkSchedule:
    """Runs `events` on the links' veth ends in host A (`veths`, in --link order) from `start`
    (perf_counter), watching tunnel A (its status socket `status`) the while: a thread, started
    and stopped as a context (stopping waits for no event still to come: the run's traffic
    decides its end)."""

    events: Sequence[LinkEvent]
    host: str
    veths: Sequence[str]
    status: Path | None
    sightings: list[Sighting] = field(default_factory=list)
    done: list[tuple[LinkEvent, float]] = field(default_factory=list)  # event, when (perf)
    _stop: threading.Event = field(default_factory=threading.Event)

    def ping_wait(self, wait: float) -> float:
        """How long each of the lab's pings waits for its reply: with events, EVENT_PING_WAIT
        at most, so that pings go on at their interval across a cut (a reply after it counts
        as late, not lost)."""
        return min(wait, EVENT_PING_WAIT) if self.events else wait

    @contextlib.contextmanager
    def running(self, start: float) -> Iterator[LinkSchedule]:
        thread = threading.Thread(target=self._run, args=(start,), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()

    def _run(self, start: float) -> None:
        pending = list(self.events)
        while not self._stop.is_set():
            now = time.perf_counter()
            while pending and start + pending[0].at <= now:
                event = pending.pop(0)
                set_veth(self.host, self.veths[event.number - 1], event.up)
                self.done.append((event, time.perf_counter()))
            document = read_one(self.status) if self.status else None
            if document is not None:
                self._saw(time.perf_counter(), document)
            self._stop.wait(WATCH_INTERVAL)

    def _saw(self, now: float, document: dict[str, Any]) -> None:
        links = tuple((str(link.get("state")), bool(link.get("active")))
                      for link in document.get("links", []))
        if not self.sightings or self.sightings[-1].links != links:
            self.sightings.append(Sighting(now, links))

    def lines(self, pings: PingResult) -> list[str]:
        """A line per event done: when tunnel A saw the link's new state, when traffic moved
        (which links carried it after), the first ping answered after it and the pings lost
        till then."""
        return [f"  {event.label}: {self._effect(event, moment)}{ping_effect(pings, moment)}"
                for event, moment in self.done]

    def _effect(self, event: LinkEvent, moment: float) -> str:
        index = event.number - 1
        after = [s for s in self.sightings if s.at >= moment and len(s.links) > index]
        state = next((s for s in after if (s.links[index][0] == "down") != event.up), None)
        if state is None:
            return "tunnel A did not see it"
        text = f"A saw it {state.links[index][0]} after {state.at - moment:.2f} s"
        moved = next((s for s in after if s.links[index][1] == event.up), None)
        if moved is not None:
            carrying = [str(number) for number, (_, active) in enumerate(moved.links, 1)
                        if active]
            text += (f", traffic on link {'+'.join(carrying)} after {moved.at - moment:.2f} s")
        return text


def first_reply(pings: PingResult, moment: float) -> float | None:
    """When (perf_counter) the first reply came to a ping sent at or after `moment` (None:
    none did)."""
    return min((sent + rtt / 1000 for sent, rtt in pings.timeline
                if sent >= moment and rtt is not None), default=None)


def ping_effect(pings: PingResult, moment: float) -> str:
    """The first reply to a ping sent after `moment`, and the pings sent since lost till
    then ("" when no ping was sent after it)."""
    after = [(sent, rtt) for sent, rtt in pings.timeline if sent >= moment]
    first = first_reply(pings, moment)
    if not after:
        return ""
    if first is None:
        return f"; none of the {len(after)} pings after it answered"
    lost = sum(1 for sent, rtt in after if rtt is None and sent < first)
    return f"; first ping reply after {first - moment:.2f} s, {lost} pings lost"


def status_path(pid: int, device: str) -> Path | None:
    """The status socket of the tunnel `pid` on `device` (None: it has none)."""
    found = list(run_dir().glob(f"*/{socket_name(pid, device)}"))
    return found[0] if found else None


def await_links_up(tunnels: Sequence[tuple[str, int]], device: str,
                   timeout: float = LINKS_UP_WAIT) -> bool:
    """Wait until each tunnel (label, pid) on `device` has heard every one of its links, so
    that traffic starts on the links the policy prefers (failover takes the first link it
    hears: two stations whose first probes collide on a half-duplex medium hear the next link
    first). False, after a warning naming the links not up, when `timeout` passes first."""
    deadline = time.monotonic() + timeout
    while True:
        waiting = []
        for label, pid in tunnels:
            path = status_path(pid, device)
            document = read_one(path) if path is not None else None
            links = document.get("links", []) if document is not None else [{"name": "status"}]
            waiting += [f"{label} {link.get('name')}" for link in links
                        if link.get("state") != "up"]
        if not waiting:
            return True
        if time.monotonic() >= deadline:
            log.warning("links not up after %.0f s: %s; measuring anyway", timeout,
                        ", ".join(waiting))
            return False
        time.sleep(WATCH_INTERVAL)
