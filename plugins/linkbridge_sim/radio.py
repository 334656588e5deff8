"""One station's radio settings (`duplex=half`), as options give them and as a station tells
the medium when it joins (a JSON record). Pure logic."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from linkbridge.plugin import ConfigError
from linkbridge_sim.channel import Radio
from linkbridge_sim.config import SimConfig
from linkbridge_sim.framing import FRAMINGS, on_air_bits
from linkbridge_sim.lora import LORA_MAX_PAYLOAD, LoraModulation

DEFAULT_PERSIST = 63
DEFAULT_SLOTTIME = 0.010
DEFAULT_DUTY_WINDOW = 3600.0
LORA_OPTIONS = ("bw", "cr", "preamble", "header", "crc", "ldro")
RADIO_OPTIONS = ("persist", "slottime", "txdelay", "txtail", "burst", "slotwait", "dcd",
                 "framing", "rxloss", "level", "capture", "duty", "duty_window", "sf",
                 *LORA_OPTIONS)


@dataclass(frozen=True)
class RadioSettings:
    """A half-duplex station: its modulation (a bit rate, or LoRa), how it shares the channel
    (p-persistent CSMA), its turnaround times, duty cycle and queue."""

    rate: float | None = None  # bit/s, when not LoRa
    lora: LoraModulation | None = None
    persist: int = DEFAULT_PERSIST
    slottime: float = DEFAULT_SLOTTIME
    txdelay: float = 0.0
    txtail: float = 0.0
    duty: float | None = None
    duty_window: float = DEFAULT_DUTY_WINDOW
    limit: int = 1000
    limit_bytes: int | None = None
    codel: tuple[float, float] | None = None  # target, interval
    burst: int = 1  # frames per key-up
    slotwait: bool = False  # one slot before the first persistence draw
    dcd: float | None = None  # carrier-detect delay (None: slottime)
    framing: str = "none"  # on-air framing of a bit-rate radio (framing.py)
    overhead: int = 0  # bytes added to (or taken from) every frame on the air
    rxloss: float = 0.0  # share of the frames it hears that it loses
    level: float = 0.0  # dB, its signal at the others
    capture: float | None = None  # dB margin that survives an overlap (None: nothing does)

    def __post_init__(self) -> None:
        if (self.rate is None) == (self.lora is None):
            raise ValueError("a radio needs exactly one of a bit rate and LoRa settings")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("a rate must be > 0")
        if not 0 <= self.persist <= 255:
            raise ValueError("persist must be 0..255")
        if min(self.slottime, self.txdelay, self.txtail, self.dcd or 0.0) < 0:
            raise ValueError("slottime, txdelay, txtail and dcd must be >= 0")
        if self.limit < 1 or self.burst < 1 or (self.limit_bytes or 1) < 1:
            raise ValueError("limit, limit_bytes and burst must be >= 1")
        if self.codel is not None and min(self.codel) <= 0:
            raise ValueError("CoDel's target and interval must be > 0")
        if not 0 <= self.rxloss <= 1 or (self.capture is not None and self.capture < 0):
            raise ValueError("rxloss must be 0..100% and capture >= 0 dB")
        if not all(isinstance(v, int | float) for v in (self.level, self.overhead)):
            raise ValueError("level and overhead must be numbers")
        if self.framing not in FRAMINGS:
            raise ValueError(f"framing must be one of {', '.join(FRAMINGS)}")
        if self.lora is not None and (self.framing != "none" or self.overhead):
            raise ValueError("framing and overhead need rate= (LoRa's airtime counts its "
                             "own header and CRC)")
        if self.duty is not None and not (0 < self.duty <= 1 and self.duty_window > 0):
            raise ValueError("duty must be > 0% and <= 100%, duty_window > 0")

    def airtime(self, size: int) -> float:
        """Seconds a `size`-byte frame's data is on the air (no key-up or tail), with its
        framing and overhead; bytes that stuff no bit (zeros) where it depends on them."""
        return self.frame_airtime(bytes(size))

    def frame_airtime(self, frame: bytes) -> float:
        """Seconds `frame`'s data is on the air, with its framing (stuffing from its bytes)
        and overhead."""
        if self.lora is not None:
            return self.lora.airtime(len(frame))
        bits = on_air_bits(frame, self.framing) + 8 * self.overhead
        return max(0, bits) / (self.rate or 1.0)

    def capacity(self, mtu: int | None) -> float:
        """Long-run bit/s of full frames (`mtu` bytes, or 1500) back to back on a free
        channel, `burst` of them per key-up and tail, within the duty cycle: what one sender
        can carry."""
        size = mtu or self.max_frame or 1500
        frames = self.burst
        rate = frames * size * 8 / (self.txdelay + frames * self.airtime(size) + self.txtail)
        return rate * (self.duty or 1.0)

    @property
    def max_frame(self) -> int | None:
        return LORA_MAX_PAYLOAD if self.lora is not None else None

    def radio(self) -> Radio:
        return Radio(self.airtime, self.persist, self.slottime, self.txdelay, self.txtail,
                     self.duty, self.duty_window, self.limit, self.burst, self.slotwait,
                     self.dcd, self.frame_airtime, self.rxloss, self.level, self.capture,
                     self.limit_bytes, self.codel)

    def describe(self) -> str:
        modulation = self.lora.describe() if self.lora else f"{self.rate:.6g} bit/s"
        duty = f" duty {self.duty * 100:.4g}% of {self.duty_window:g} s" if self.duty else ""
        tnc = f" burst {self.burst}" if self.burst > 1 else ""
        tnc += " slotwait" if self.slotwait else ""
        tnc += f" dcd {self.dcd * 1e3:g}ms" if self.dcd is not None else ""
        tnc += f" framing {self.framing}" if self.framing != "none" else ""
        tnc += f" overhead {self.overhead}" if self.overhead else ""
        tnc += f" rxloss {self.rxloss * 100:.4g}%" if self.rxloss else ""
        tnc += f" level {self.level:g}dB" if self.level else ""
        tnc += f" capture {self.capture:g}dB" if self.capture is not None else ""
        return (f"half duplex, {modulation}, persist {self.persist} slottime "
                f"{self.slottime * 1e3:g}ms txdelay {self.txdelay * 1e3:g}ms "
                f"txtail {self.txtail * 1e3:g}ms{tnc}{duty}")

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["lora"] = asdict(self.lora) if self.lora else None
        return record

    @classmethod
    def from_record(cls, record: Any) -> RadioSettings:
        """Settings from a station's join record; ValueError when it is not a valid one."""
        if not isinstance(record, dict):
            raise ValueError("radio settings must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(record) - known)
        if unknown:
            raise ValueError(f"unknown radio setting {unknown[0]!r}")
        values = dict(record)
        lora, codel = values.get("lora"), values.get("codel")
        if codel is not None:
            if not (isinstance(codel, list | tuple) and len(codel) == 2):
                raise ValueError("codel must be [target, interval]")
            values["codel"] = tuple(codel)
        given = [*values.values(), *(lora.values() if isinstance(lora, dict) else ()),
                 *(codel or ())]
        if not all(_finite(v) for v in given):
            raise ValueError("radio settings must be finite numbers")
        try:
            if values.get("lora") is not None:
                values["lora"] = LoraModulation(**values["lora"])
            return cls(**values)
        except TypeError as exc:
            raise ValueError(f"bad radio settings: {exc}") from None


def mean_deferral(persist: int, slottime: float, slotwait: bool) -> float:
    """Mean wait on a free channel before a transmission: (1 - p) / p slots of persistence
    draws (p = (persist + 1) / 256), and one more with `slotwait`."""
    p = (persist + 1) / 256
    return slottime * ((1 - p) / p + slotwait)


def radio_settings(owner: str, options: Mapping[str, Any],
                   config: SimConfig) -> RadioSettings | None:
    """The radio a `duplex=half` side's options describe (None for `duplex=full`), checked;
    its bit rate, overhead and queue come from the side's impairment settings."""
    rate = config.rate
    given = [name for name in RADIO_OPTIONS if options.get(name) is not None]
    if options.get("duplex") != "half":
        if given:
            raise ConfigError(f"{owner}: {given[0]} needs duplex=half (a shared radio channel)")
        return None
    if options.get("rate_trace") is not None:
        raise ConfigError(f"{owner}: rate_trace needs duplex=full (a trace is one-way capacity)")
    lora_given = [name for name in LORA_OPTIONS if options.get(name) is not None]
    if lora_given and options.get("sf") is None:
        raise ConfigError(f"{owner}: {lora_given[0]} needs sf= (LoRa settings)")
    if options.get("sf") is not None and rate is not None:
        raise ConfigError(f"{owner}: choose rate= or LoRa (sf=), not both")
    if options.get("sf") is None and rate is None:
        raise ConfigError(f"{owner}: duplex=half needs the radio's rate= or LoRa's sf=")
    try:
        lora = None
        if options.get("sf") is not None:
            ldro = options.get("ldro") or "auto"
            lora = LoraModulation(
                sf=options["sf"], bandwidth=options.get("bw") or 125_000.0,
                cr=options.get("cr") or 1,
                preamble=8 if options.get("preamble") is None else options["preamble"],
                explicit_header=(options.get("header") or "explicit") == "explicit",
                crc=True if options.get("crc") is None else options["crc"],
                ldro=None if ldro == "auto" else ldro == "on")
            mtu = options.get("mtu")
            if mtu is not None and mtu > LORA_MAX_PAYLOAD:
                raise ValueError(f"mtu {mtu} exceeds LoRa's {LORA_MAX_PAYLOAD}-byte payload")
        settings = RadioSettings(
            rate=rate, lora=lora,
            persist=DEFAULT_PERSIST if options.get("persist") is None else options["persist"],
            slottime=(DEFAULT_SLOTTIME if options.get("slottime") is None
                      else options["slottime"]),
            txdelay=options.get("txdelay") or 0.0, txtail=options.get("txtail") or 0.0,
            burst=options.get("burst") or 1, slotwait=bool(options.get("slotwait")),
            dcd=options.get("dcd"), framing=options.get("framing") or "none",
            overhead=config.overhead, rxloss=options.get("rxloss") or 0.0,
            level=options.get("level") or 0.0, capture=options.get("capture"),
            duty=options.get("duty"),
            duty_window=options.get("duty_window") or DEFAULT_DUTY_WINDOW, limit=config.limit,
            limit_bytes=config.limit_bytes, codel=config.codel)
        size = options.get("mtu") or settings.max_frame or 1500
        on_air = settings.txdelay + settings.airtime(size) + settings.txtail
        if settings.duty is not None and on_air > settings.duty * settings.duty_window:
            raise ValueError(f"a {size}-byte frame ({on_air:.3g} s on air) exceeds the duty "
                             "cycle's budget per window")
        return settings
    except ValueError as exc:
        raise ConfigError(f"{owner}: {exc}") from None


def _finite(value: Any) -> bool:
    """False for a number no float holds finitely (JSON's NaN, Infinity, or an integer past
    1e308, which arithmetic with floats would raise OverflowError on); True for the rest."""
    if not isinstance(value, int | float):
        return True
    try:
        return math.isfinite(value)
    except OverflowError:
        return False
