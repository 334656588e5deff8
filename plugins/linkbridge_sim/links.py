"""The two faces of the simulator: the `sim:` link (over a UDP carrier) and the `--via sim:`
wrapper in front of any other link."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

from linkbridge.plugin import (
    ConfigError,
    DatagramEndpoint,
    Link,
    LinkError,
    LinkUrl,
    LinkWrapper,
    drops,
    format_address,
    host_port,
    resolve_options,
)
from linkbridge.plugin.lab import LabDirection, LabSides, LabStation, LabStationHosts
from linkbridge_sim.config import SimConfig
from linkbridge_sim.impaired import REASONS, SIM, ImpairedSender, new_seed
from linkbridge_sim.loss import loss_model
from linkbridge_sim.mahimahi import trace_mean_rate
from linkbridge_sim.medium_protocol import (
    DEFAULT_PORT,
    EVERY_STATION,
    address,
    station_name,
    unaddress,
)
from linkbridge_sim.options import (
    DIRECTIONS,
    LINK_OPTIONS,
    WRAPPER_OPTIONS,
    half_duplex_config,
    lab_side_options,
    side_config,
)
from linkbridge_sim.radio import RadioSettings, mean_deferral
from linkbridge_sim.radiolab import lab_medium, medium_rows
from linkbridge_sim.station import MediumStation
from linkbridge_sim.topology import Topology, read_topology
from linkbridge_sim.trace import read_trace

LAB_PORT = 47100
UNKNOWN_STATION = "unknown_station"
ADDRESS_ROOM = 33  # bytes an address may take of a LoRa frame (a length byte, 32 of name)
ANSWER_BYTES = 64  # a TCP ACK with timestamps, in an estimated round trip


def lab_direction(config: SimConfig, radio: RadioSettings | None = None) -> LabDirection:
    """The configured figures of one direction, as the lab report shows them. A half-duplex
    radio adds its key-up time, the mean CSMA deferral on a free channel (a slot more with
    slotwait), and half its tail
    (a reply waits for the tail of the frame it answers), and serialises at its airtime; its
    rate is the long-run capacity (radio.capacity()); it is half duplex."""
    delay = config.delay * (1.0 - config.reorder)
    if radio is None:
        return LabDirection(loss=loss_model(config).stationary_loss, delay=delay,
                            rate=config.rate or trace_mean_rate(config.rate_trace),
                            overhead=config.overhead)
    deferral = mean_deferral(radio.persist, radio.slottime, radio.slotwait)
    return LabDirection(loss=loss_model(config).stationary_loss,
                        delay=delay + radio.txdelay + deferral + radio.txtail / 2,
                        rate=radio.capacity(config.mtu), airtime=radio.airtime,
                        half_duplex=True)


class SimLink(Link):
    """Impairs what this side sends, then carries it as UDP datagrams to the peer."""

    scheme = "sim"
    summary = ("impairment simulator over a UDP carrier: loss models, delay/jitter, reorder, "
               "duplicate, corrupt, rate limit or Mahimahi trace; duplex=half: a shared radio "
               "channel (CSMA, collisions, duty cycle, LoRa airtime); each side impairs what "
               "it sends")
    target_help = ("REMOTE_HOST:PORT of the peer's sim: link, or with duplex=half of the "
                   "simulated medium (the lab sets it)")
    options = LINK_OPTIONS
    drop_reasons: ClassVar[Mapping[str, str]] = {
        **REASONS, UNKNOWN_STATION: "a frame from a station that is no peer's endpoint= "
                                    "(station=, multipoint)"}

    def __new__(cls, target: str, options: Mapping[str, Any]) -> SimLink:
        """A named station (`station=`) is a SimStation, an addressed link; another radio
        (`duplex=half`) a SimRadio, which says when it is ready."""
        if cls is SimLink and options.get("station") is not None:
            return super().__new__(SimStation)
        if cls is SimLink and options.get("duplex") == "half":
            return super().__new__(SimRadio)
        return super().__new__(cls)

    def __init__(self, target: str, options: Mapping[str, Any]) -> None:
        super().__init__(target, options)
        owner = f"link sim:{target}"
        lab_keys = sorted(key for key, value in options.items()
                          if "." in key and value is not None)
        if lab_keys:
            raise ConfigError(f"{owner}: {lab_keys[0]}: ab./ba. options only apply in "
                              "`linkbridge lab`; elsewhere each side's options configure "
                              "what it sends")
        if not target:
            raise ConfigError("link sim: needs a target REMOTE_HOST:PORT "
                              "(`linkbridge lab` chooses it itself)")
        try:
            self.remote = host_port(target)
        except ValueError as exc:
            raise ConfigError(f"{owner}: bad target: {exc}") from None
        wildcard = "::" if ":" in self.remote[0] else "0.0.0.0"
        self.sim_config, self.radio, extra = half_duplex_config(owner, options)
        default_port = 0 if self.radio else self.remote[1]  # a station: any port
        self.bind: tuple[str, int] = options.get("bind") or (wildcard, default_port)
        station = options.get("station")
        if station is not None and self.radio is None:
            raise ConfigError(f"{owner}: station= needs duplex=half (a station on the medium)")
        self.sender = ImpairedSender(  # a station checks the MTU before it adds the address
            self.name, self.sim_config if station is None else replace(self.sim_config, mtu=None),
            **extra)
        self._endpoint: DatagramEndpoint | None = None
        self._station = (MediumStation(self.name, self.bind, self.remote, self.radio, station)
                         if self.radio else None)

    @property
    def mtu(self) -> int | None:
        return self.sim_config.mtu

    def frame_time(self, size: int) -> float:
        """How long a `size`-byte frame keeps this side busy (the link-aware queue's pace): at
        rate= with its overhead, or with duplex=half the frame's airtime and its share of a
        key-up, the mean deferral on a free channel and the tail (one in `burst` frames pays
        them: a TNC sends what it holds after one key-up), stretched by the duty cycle; 0.0
        without a rate; a frame over LoRa's largest payload counts in proportion."""
        radio = self.radio
        if radio is None:
            rate = self.sim_config.rate or trace_mean_rate(self.sim_config.rate_trace)
            return (size + self.sim_config.overhead) * 8 / rate if rate else 0.0
        if radio.max_frame is not None and size > radio.max_frame:  # LoRa: in proportion
            return self.frame_time(radio.max_frame) * size / radio.max_frame
        keying = (radio.txdelay + mean_deferral(radio.persist, radio.slottime, radio.slotwait)
                  + radio.txtail)
        return (keying / radio.burst + radio.airtime(size)) / (radio.duty or 1.0)

    def round_trip(self) -> float:
        """A full frame one way and a small answer back, both this side's figures."""
        figures = lab_direction(self.sim_config, self.radio)
        return figures.latency(self.mtu or 1500) + figures.latency(ANSWER_BYTES)

    def open(self) -> None:
        deliver: Callable[[bytes], None]
        deliver_lost = None
        if self._station is not None:
            self.counters = self._station.open()
            deliver, deliver_lost = self._station.send, self._station.send_lost
        else:
            self._endpoint = DatagramEndpoint(self.name, self.bind, self.remote)
            self.counters = self._endpoint.counters
            deliver = self._endpoint.send
        try:
            self.sender.open(deliver, self.counters, deliver_lost)
        except Exception:
            self.close()
            raise

    def send(self, packet: bytes) -> None:
        self.sender.send(packet)

    def receive(self, timeout: float) -> list[bytes]:
        if self._station is not None:
            return self._station.receive(timeout)
        if self._endpoint is None:
            raise LinkError(f"{self.name}: used before open()")
        return self._endpoint.receive(timeout)

    def close(self) -> None:
        self.sender.close()
        if self._station is not None:
            self._station.close()
        if self._endpoint is not None:
            self._endpoint.close()

    @classmethod
    def _lab_sides(cls, url: LinkUrl) -> dict[str, dict[str, Any]]:
        """Validated options of each lab side (A's for `ab`, B's for `ba`)."""
        if url.target or "bind" in url.options:
            raise ConfigError("the lab chooses the sim: addresses itself; give options only "
                              "(e.g. sim:?loss=5%&delay=40ms)")
        sides = {}
        for side in DIRECTIONS:
            raw = lab_side_options(url.options, side)
            owner = f"link sim: ({side[0].upper()} -> {side[1].upper()})"
            values = resolve_options(owner, LINK_OPTIONS, raw)
            half_duplex_config(owner, values)
            if values["replay"]:
                read_trace(values["replay"])  # a missing or bad trace fails before set-up
            sides[side] = raw
        return sides

    @classmethod
    @contextlib.contextmanager
    def lab_pair(cls, url: LinkUrl, sides: LabSides) -> Iterator[tuple[LinkUrl, LinkUrl]]:
        if "seed" not in url.options:  # one seed for the run, so a report names it
            url = LinkUrl(url.scheme, url.target, {**url.options, "seed": str(new_seed())})
        options = cls._lab_sides(url)
        if url.options.get("duplex") != "half":
            yield (
                LinkUrl("sim", format_address((sides.b_address, LAB_PORT)), options["ab"]),
                LinkUrl("sim", format_address((sides.a_address, LAB_PORT)), options["ba"]),
            )
            return
        medium = (sides.a_address, DEFAULT_PORT)
        with lab_medium(sides.a_netns, medium, url.options["seed"]):
            yield (LinkUrl("sim", format_address(medium), options["ab"]),
                   LinkUrl("sim", format_address(medium), options["ba"]))

    @classmethod
    def lab_configured(cls, url: LinkUrl) -> tuple[LabDirection, LabDirection] | None:
        configs = [half_duplex_config("link sim:",
                                      resolve_options("link sim:", LINK_OPTIONS, raw))
                   for raw in cls._lab_sides(url).values()]
        return (lab_direction(configs[0][0], configs[0][1]),
                lab_direction(configs[1][0], configs[1][1]))

    @classmethod
    def lab_measured(cls, url: LinkUrl, sides: LabSides) -> list[tuple[str, str, str, str]]:
        if url.options.get("duplex") != "half":
            return []
        return medium_rows(sides.a_netns, (sides.a_address, DEFAULT_PORT),
                           {sides.a_address: "A", sides.b_address: "B"})

    @classmethod
    @contextlib.contextmanager
    def lab_stations(cls, url: LinkUrl, hosts: LabStationHosts) -> Iterator[list[LabStation]]:
        """Named stations on one medium (in the first host, with the lab's topology)."""
        if url.target or any(key in url.options for key in ("bind", "station")):
            raise ConfigError("the lab chooses the sim: addresses and station names itself; "
                              "give options only (e.g. sim:?duplex=half&rate=9600)")
        if url.options.get("duplex") != "half":
            raise ConfigError("lab --stations runs sim: on the radio medium: give duplex=half "
                              "and the radio (e.g. sim:?duplex=half&rate=9600)")
        half_duplex_config("link sim:", resolve_options("link sim:", LINK_OPTIONS, url.options))
        topology = _lab_topology(hosts)
        seed = int(url.options.get("seed") or new_seed())
        medium = (hosts.addresses[0], DEFAULT_PORT)
        index = {name: n for n, name in enumerate(hosts.names)}
        with lab_medium(hosts.netns[0], medium, str(seed), hosts.topology):
            yield [LabStation(
                LinkUrl("sim", format_address(medium),
                        {**url.options, "station": name, "seed": str(seed + 1 + n)}),
                name,
                tuple(index[other] for other in topology.neighbours(name)) if topology
                else tuple(i for i in range(len(hosts.names)) if i != n))
                for n, name in enumerate(hosts.names)]

    @classmethod
    def lab_station_rows(cls, url: LinkUrl,
                         hosts: LabStationHosts) -> list[tuple[str, str, str, str]]:
        """The medium's rows for each station, labelled by its name."""
        return medium_rows(hosts.netns[0], (hosts.addresses[0], DEFAULT_PORT),
                           dict(zip(hosts.addresses, hosts.names, strict=True)))


def _lab_topology(hosts: LabStationHosts) -> Topology | None:
    """The lab's topology, naming exactly the lab's stations; ConfigError otherwise."""
    if hosts.topology is None:
        return None
    try:
        topology = read_topology(hosts.topology)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    names = set(hosts.names)
    for odd, why in ((topology.stations - names, "not in the lab"),
                     (names - topology.stations, "not named")):
        if odd:
            raise ConfigError(f"topology {hosts.topology}: station {min(odd)} is {why} "
                              f"(the lab's stations: {', '.join(hosts.names)})")
    return topology


class SimRadio(SimLink):
    """A station on the medium (`duplex=half`), which says when its radio is ready for another
    frame (SendReadiness): it holds fewer than two frames (one on the air, the next to follow
    it in the same key-up) and hears no other station's transmission, as the medium reports."""

    def ready(self) -> bool:
        return self._radio_station().ready()

    def on_ready(self, listener: Callable[[], None]) -> None:
        self._radio_station().on_ready(listener)

    def _radio_station(self) -> MediumStation:
        assert self._station is not None  # a radio has one
        return self._station


class SimStation(SimRadio):
    """A named station on the medium (`sim:HOST:PORT?duplex=half&station=NAME`): an
    AddressedLink whose stations are the other stations' names. send() goes to every station;
    a frame from a station that is no peer's is counted as unknown_station."""

    _stations: frozenset[str] = frozenset()

    @property
    def mtu(self) -> int | None:
        mtu = self.sim_config.mtu
        lora = self.radio is not None and self.radio.max_frame is not None
        return mtu - ADDRESS_ROOM if mtu is not None and lora else mtu

    def set_stations(self, stations: Sequence[str]) -> None:
        """The peers' stations, each a name another station joined with (AddressedLink)."""
        for station in stations:
            try:
                station_name(station)
            except ValueError as exc:
                raise ConfigError(f"link {self.name}: endpoint: {exc}") from None
        self._stations = frozenset(stations)

    def send(self, packet: bytes) -> None:
        self.send_all(packet)

    def send_to(self, station: str, frame: bytes) -> None:
        if self.mtu is not None and len(frame) > self.mtu:
            self.counters.drop(SIM + drops.MTU)
            return
        self.sender.send(address(station, frame))

    def send_all(self, frame: bytes) -> None:
        self.send_to(EVERY_STATION, frame)

    def receive(self, timeout: float) -> list[bytes]:
        return [frame for _station, frame in self._addressed(timeout)]

    def receive_from(self, timeout: float) -> list[tuple[str, bytes]]:
        received = []
        for station, frame in self._addressed(timeout):
            if station in self._stations:
                received.append((station, frame))
            else:
                self.counters.drop(UNKNOWN_STATION)
        return received

    def _addressed(self, timeout: float) -> list[tuple[str, bytes]]:
        received = []
        for body in super().receive(timeout):
            try:
                received.append(unaddress(body))
            except ValueError:
                self.counters.drop(drops.MALFORMED_FRAME)
        return received


class SimWrapper(LinkWrapper):
    """Impairs what this side sends before the wrapped link carries it (a fault injector)."""

    scheme = "sim"
    summary = "impair what this side sends before the wrapped link carries it"
    target_help = "(no target: options only, e.g. --via 'sim:?loss=1%')"
    options = WRAPPER_OPTIONS
    drop_reasons: ClassVar[Mapping[str, str]] = REASONS

    def __init__(self, target: str, options: Mapping[str, Any], inner: Link) -> None:
        super().__init__(target, options, inner)
        if target:
            raise ConfigError(f"wrapper sim:{target}: takes no target, only options "
                              "(e.g. --via 'sim:?loss=1%')")
        self.sim_config, extra = side_config("wrapper sim:", options)
        self.sender = ImpairedSender(self.name, self.sim_config, **extra)

    @property
    def mtu(self) -> int | None:
        limits = [m for m in (self.sim_config.mtu, self.inner.mtu) if m is not None]
        return min(limits) if limits else None

    def open(self) -> None:
        self.inner.open()
        self.counters = self.inner.counters
        try:
            self.sender.open(self.inner.send, self.counters)
        except Exception:
            self.inner.close()
            raise

    def send(self, packet: bytes) -> None:
        self.sender.send(packet)

    def receive(self, timeout: float) -> list[bytes]:
        return self.inner.receive(timeout)

    def close(self) -> None:
        self.sender.close()
        self.inner.close()

    @classmethod
    def lab_configured(cls, url: LinkUrl) -> tuple[LabDirection, LabDirection] | None:
        values = resolve_options("wrapper sim:", WRAPPER_OPTIONS, url.options)
        direction = lab_direction(side_config("wrapper sim:", values)[0])
        return direction, direction
