"""The simulator's declared options and how the lab splits them between its two sides."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from linkbridge.plugin import (
    MIN_FRAME_SIZE,
    ConfigError,
    Option,
    choice,
    duration,
    host_port,
    integer,
)
from linkbridge_sim.config import DEFAULT_LIMIT, DISTRIBUTIONS, SimConfig, sim_config
from linkbridge_sim.params import bitrate, path, percent, percent_list, signed_integer

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
    Option("overhead", signed_integer, None, "bytes the rate limit adds to every packet"),
    Option("limit", integer(1, 1_000_000), None,
           f"packets held at once, delayed or queued; more are tail-dropped "
           f"(default {DEFAULT_LIMIT})"),
    Option("seed", integer(0), None, "seed of the random generator (default: a fresh one, logged)"),
    Option("trace", path, None, "record every packet's decisions to this file (JSON lines)"),
    Option("replay", path, None, "take the decisions from this trace instead of the generator"),
)
MTU = Option("mtu", integer(MIN_FRAME_SIZE, 65535), None,
             "larger packets are dropped and counted (below 68: use fragmentation)")
BIND = Option("bind", host_port, None,
              "local HOST:PORT of the UDP carrier (default: any address, the remote's port)")

WRAPPER_OPTIONS = (MTU, *IMPAIRMENT)
LINK_OPTIONS = (BIND, MTU, *IMPAIRMENT, *(
    Option(f"{side}.{option.name}", option.parse, None,
           f"lab only, {side[0].upper()} -> {side[1].upper()}: {option.help}")
    for side in DIRECTIONS for option in IMPAIRMENT))
OWN_KEYS = frozenset(option.name for option in WRAPPER_OPTIONS)


def side_config(owner: str, options: Mapping[str, Any]) -> tuple[SimConfig, dict[str, Any]]:
    """The impairment one side applies, and its seed/trace/replay settings."""
    config = sim_config(owner, options)
    if options.get("trace") and options.get("replay") and options["trace"] == options["replay"]:
        raise ConfigError(f"{owner}: trace and replay must be different files")
    return config, {key: options.get(key) for key in ("seed", "trace", "replay")}


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
