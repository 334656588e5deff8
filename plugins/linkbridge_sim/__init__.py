"""The `sim:` link and `--via sim:` wrapper: a seeded, reproducible link impairment simulator.

The model (config, loss, delay, rate, decisions, impairment; and for radios lora, duty,
mahimahi, channel, radio, medium_protocol) is pure logic with time passed in; impaired,
scheduler, trace, links, station, medium and radiolab are the I/O glue. See docs/sim.md.
"""

from __future__ import annotations

from linkbridge.plugin import Link, LinkWrapper, hookimpl
from linkbridge_sim.links import SimLink, SimWrapper


@hookimpl
def linkbridge_register_links() -> list[type[Link]]:
    return [SimLink]


@hookimpl
def linkbridge_register_wrappers() -> list[type[LinkWrapper]]:
    return [SimWrapper]
