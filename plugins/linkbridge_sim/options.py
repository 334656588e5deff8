"""The simulator's declared options and how the lab splits them between its two sides."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from linkbridge.plugin import (
    MIN_FRAME_SIZE,
    ConfigError,
    Option,
    boolean,
    choice,
    duration,
    host_port,
    integer,
)
from linkbridge_sim.config import DEFAULT_LIMIT, DISTRIBUTIONS, SimConfig, sim_config
from linkbridge_sim.framing import FRAMINGS
from linkbridge_sim.medium_protocol import station_name
from linkbridge_sim.params import (
    bandwidth,
    bitrate,
    coding_rate,
    decibels,
    path,
    percent,
    percent_list,
    positive_percent,
    signed_integer,
    window,
)
from linkbridge_sim.radio import RadioSettings, radio_settings
from linkbridge_sim.trace import read_rate_trace

DIRECTIONS = ("ab", "ba")  # lab only: A -> B and B -> A

IMPAIRMENT = (
    Option("loss", percent, None, "random loss, e.g. 5%"),
    Option("loss_corr", percent, None,
           "chance a packet repeats the previous loss decision (mean rate stays `loss`)"),
    Option("gemodel", percent_list(4), None,
           "Gilbert-Elliott loss p,r,1-h,1-k (netem's gemodel), e.g. 1%,10%,70%,0.1%"),
    Option("loss_state", percent_list(5), None,
           "4-state Markov loss p13,p31,p32,p23,p14 (netem's loss state)"),
    Option("delay", duration, None, "added delay, e.g. 40ms"),
    Option("jitter", duration, None, "delay variation: uniform half-width, else std deviation"),
    Option("delay_corr", percent, None,
           "correlation of consecutive jitter draws (netem's delay correlation)"),
    Option("distribution", choice(*DISTRIBUTIONS), None,
           "jitter shape: uniform (default), normal, pareto, paretonormal"),
    Option("reorder", percent, None, "chance a packet skips the delay (needs delay=)"),
    Option("duplicate", percent, None, "chance a packet is sent twice"),
    Option("corrupt", percent, None, "chance a packet gets one random bit flipped"),
    Option("rate", bitrate, None, "rate limit in bit/s: 9600, 64kbit, 1mbit, 100kbps (bytes)"),
    Option("rate_trace", read_rate_trace, None,
           "Mahimahi trace file: the rate follows its delivery opportunities (1504 B each)"),
    Option("overhead", signed_integer, None,
           "bytes the rate limit (duplex=half: the radio) adds to every packet"),
    Option("limit", integer(1, 1_000_000), None,
           f"packets held at once, delayed or queued; more are tail-dropped "
           f"(default {DEFAULT_LIMIT})"),
    Option("limit_bytes", integer(1, 1 << 30), None,
           "bytes held at once, besides `limit` packets; more are tail-dropped (default: no "
           "byte limit)"),
    Option("codel", boolean, None,
           "CoDel queue management (RFC 8289) on the queue that drains at the rate (or the "
           "radio's): drops packets queued too long (default off)"),
    Option("codel_target", duration, None, "CoDel's target sojourn time (default 5ms)"),
    Option("codel_interval", duration, None, "CoDel's interval (default 100ms)"),
    Option("loss_airtime", boolean, None,
           "a lost packet still takes its time on the link, as on a radio or serial line "
           "(default off; on with duplex=half)"),
    Option("seed", integer(0), None, "seed of the random generator (default: a fresh one, logged)"),
    Option("trace", path, None, "record every packet's decisions to this file (JSON lines)"),
    Option("replay", path, None, "take the decisions from this trace instead of the generator"),
)
RADIO = (
    Option("persist", integer(0, 255), None,
           "p-persistent CSMA: send on a free channel with probability (persist+1)/256 "
           "(default 63)"),
    Option("slottime", duration, None,
           "CSMA slot: wait between tries (default 10ms; also the default dcd)"),
    Option("txdelay", duration, None, "key-up time before a transmission's data (default 0)"),
    Option("txtail", duration, None, "carrier held after a transmission's data (default 0)"),
    Option("burst", integer(1, 10_000), None,
           "frames one key-up carries: a KISS TNC sends what it holds, e.g. 16 (default 1)"),
    Option("slotwait", boolean, None,
           "wait one slot before the first persistence draw, as Dire Wolf (default off)"),
    Option("dcd", duration, None,
           "carrier-detect delay: another's transmission is heard this long after it starts "
           "(default: slottime)"),
    Option("framing", choice(*FRAMINGS), None,
           "on-air framing from each frame's bytes: none (default), hdlc (flags, FCS, bit "
           "stuffing), ax25 (hdlc around an AX.25 UI header)"),
    Option("rxloss", percent, None,
           "share of the frames it hears that this station fails to receive (default 0)"),
    Option("level", decibels, None,
           "this station's signal at the others, in dB, for the capture effect (default 0dB)"),
    Option("capture", decibels, None,
           "capture effect: decode a frame that overlaps others when it is this much "
           "stronger than each, e.g. 6dB (default: none, any overlap destroys both)"),
    Option("duty", positive_percent, None, "duty-cycle limit: share of any window on air, e.g. 1%"),
    Option("duty_window", window, None, "duty-cycle window, e.g. 1h (ETSI), 10min (default 1h)"),
    Option("sf", integer(6, 12), None, "LoRa spreading factor 6..12: airtime by Semtech's formula"),
    Option("bw", bandwidth, None, "LoRa bandwidth, e.g. 125k (default), 250k, 500k"),
    Option("cr", coding_rate, None, "LoRa coding rate 4/5 (default) .. 4/8"),
    Option("preamble", integer(0, 65535), None, "LoRa preamble symbols (default 8)"),
    Option("header", choice("explicit", "implicit"), None, "LoRa header (default explicit)"),
    Option("crc", boolean, None, "LoRa payload CRC on/off (default on)"),
    Option("ldro", choice("auto", "on", "off"), None,
           "LoRa low-data-rate optimisation (default auto: on above 16 ms symbols)"),
)
DUPLEX = Option("duplex", choice("full", "half"), None,
                "full (default): two pipes; half: a shared radio channel, through a medium "
                "process at the target (see docs/sim.md)")
MTU = Option("mtu", integer(MIN_FRAME_SIZE, 65535), None,
             "larger packets are dropped and counted (below 68: use fragmentation)")
STATION = Option("station", station_name, None,
                 "duplex=half: this station's name on the medium; the link is then addressed: "
                 "with --peer each endpoint= is a station's name (docs/multipoint.md)")
BIND = Option("bind", host_port, None,
              "local HOST:PORT of the UDP carrier (default: any address, the remote's port)")

WRAPPER_OPTIONS = (MTU, *IMPAIRMENT)
LINK_OPTIONS = (BIND, MTU, DUPLEX, STATION, *IMPAIRMENT, *RADIO, *(
    Option(f"{side}.{option.name}", option.parse, None,
           f"lab only, {side[0].upper()} -> {side[1].upper()}: {option.help}")
    for side in DIRECTIONS for option in (*IMPAIRMENT, *RADIO)))
OWN_KEYS = frozenset(option.name for option in WRAPPER_OPTIONS)


def side_config(owner: str, options: Mapping[str, Any]) -> tuple[SimConfig, dict[str, Any]]:
    """The impairment one side applies, and its seed/trace/replay settings."""
    config = sim_config(owner, options)
    if options.get("trace") and options.get("replay") and options["trace"] == options["replay"]:
        raise ConfigError(f"{owner}: trace and replay must be different files")
    return config, {key: options.get(key) for key in ("seed", "trace", "replay")}


def half_duplex_config(owner: str, options: Mapping[str, Any]
                       ) -> tuple[SimConfig, RadioSettings | None, dict[str, Any]]:
    """side_config() plus the radio of `duplex=half`; the radio takes the rate (its bit rate),
    the overhead (bytes on the air per frame) and the queue's limits and CoDel, LoRa
    caps the MTU at 255, and lost frames take their airtime unless `loss_airtime=off`."""
    config, extra = side_config(owner, options)
    radio = radio_settings(owner, options, config)
    if radio is None:
        return config, None, extra
    mtu = config.mtu if config.mtu is not None else radio.max_frame
    loss_airtime = options.get("loss_airtime") is not False  # a radio's default: on
    return (replace(config, rate=None, overhead=0, mtu=mtu, loss_airtime=loss_airtime,
                    limit_bytes=None, codel=None), radio, extra)


def lab_side_options(given: Mapping[str, str], side: str) -> dict[str, str]:
    """Raw options for one lab side: the shared ones overridden by that side's `ab.`/`ba.` ones.

    B's generator gets seed+1 unless `ba.seed` is given, so the directions are independent;
    a shared trace/replay PATH becomes PATH.ab and PATH.ba.
    """
    own = {key: value for key, value in given.items() if "." not in key}
    for key in ("trace", "replay"):
        if key in own:
            own[key] = f"{own[key]}.{side}"
    if side == "ba" and "seed" in own:
        own["seed"] = str(integer(0)(own["seed"]) + 1)
    prefix = f"{side}."
    own.update({key[len(prefix):]: value for key, value in given.items()
                if key.startswith(prefix)})
    return own
