"""sim: option parsing and validation: netem-like values, one-line errors, lab sides."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from linkbridge_sim.links import SimLink, SimWrapper
from linkbridge_sim.options import lab_side_options
from linkbridge_sim.params import bitrate, percent, percent_list

from linkbridge.errors import ConfigError
from linkbridge.lab.uart import cable_paths
from linkbridge.plugin.lab import LabSides
from linkbridge.plugin.registry import LinkRegistry, get_plugin_manager
from linkbridge.plugin.url import parse_link_url


@pytest.fixture(scope="module")
def registry() -> LinkRegistry:
    return LinkRegistry(get_plugin_manager())


@pytest.mark.parametrize(("text", "value"), [("5%", 0.05), ("5", 0.05), ("0.1%", 0.001),
                                             ("100%", 1.0), (" 2.5 % ", 0.025)])
def test_percent(text: str, value: float) -> None:
    assert percent(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "five", "101%", "-1%", "5%%"])
def test_bad_percent(text: str) -> None:
    with pytest.raises(ValueError):
        percent(text)


@pytest.mark.parametrize(("text", "value"), [("9600", 9600), ("9600bit", 9600),
                                             ("64kbit", 64000), ("1.5Mbit", 1.5e6),
                                             ("100kbps", 800_000), ("1gbit", 1e9)])
def test_bitrate(text: str, value: float) -> None:
    assert bitrate(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "fast", "0", "10 furlongs", "-5kbit"])
def test_bad_bitrate(text: str) -> None:
    with pytest.raises(ValueError):
        bitrate(text)


def test_percent_list_bounds() -> None:
    assert percent_list(4)("1%,10%") == (0.01, 0.1)
    with pytest.raises(ValueError, match="1 to 4"):
        percent_list(4)("1,2,3,4,5")


def test_sim_link_builds_its_configuration(registry: LinkRegistry) -> None:
    link = registry.create_link("sim:127.0.0.1:9?mtu=100&loss=5%&delay=40ms&jitter=5ms"
                                "&distribution=normal&rate=9600&overhead=8&seed=3")
    assert isinstance(link, SimLink)
    config = link.sim_config
    assert (config.mtu, config.loss, config.rate, config.overhead) == (100, 0.05, 9600, 8)
    assert config.delay == pytest.approx(0.04) and config.jitter == pytest.approx(0.005)
    assert link.mtu == 100 and link.sender.seed == 3


def test_gemodel_and_loss_state_get_netem_defaults(registry: LinkRegistry) -> None:
    link = registry.create_link("sim:127.0.0.1:9?gemodel=1%")
    assert isinstance(link, SimLink)
    assert link.sim_config.gemodel == pytest.approx((0.01, 0.99, 1.0, 0.0))
    link = registry.create_link("sim:127.0.0.1:9?loss_state=2%,30%")
    assert isinstance(link, SimLink)
    assert link.sim_config.loss_state == pytest.approx((0.02, 0.3, 0.0, 1.0, 0.0))


@pytest.mark.parametrize(("url", "message"), [
    ("sim:127.0.0.1:9?los=5%", r"unknown option 'los' \(did you mean 'loss'\?\)"),
    ("sim:127.0.0.1:9?loss=5", None),
    ("sim:127.0.0.1:9?loss=150%", r"bad value '150%' for option 'loss': .*<= 100%"),
    ("sim:127.0.0.1:9?loss=1%&gemodel=1%", "choose one loss model, not loss and gemodel"),
    ("sim:127.0.0.1:9?reorder=5%", "reorder needs delay="),
    ("sim:127.0.0.1:9?loss_corr=25%", "loss_corr needs loss="),
    ("sim:127.0.0.1:9?distribution=pareto", "distribution needs jitter="),
    ("sim:127.0.0.1:9?overhead=10", "overhead needs rate="),
    ("sim:127.0.0.1:9?delay=5ms&delay_corr=25%", "delay_corr needs jitter="),
    ("sim:127.0.0.1:9?distribution=gauss&jitter=1ms", "expected one of uniform, normal"),
    ("sim:127.0.0.1:9?loss_state=60%,10%,0,0,50%", "p13 \\+ p14 = 110% exceeds 100%"),
    ("sim:127.0.0.1:9?ab.loss=5%", "ab.loss: ab./ba. options only apply in `linkbridge lab`"),
    ("sim:?loss=5%", "needs a target REMOTE_HOST:PORT"),
    ("sim:nowhere:9", "bad target: 'nowhere' is not an IP address"),
    ("sim:127.0.0.1:9?trace=/tmp/x&replay=/tmp/x", "trace and replay must be different"),
])
def test_bad_options_are_one_line_config_errors(registry: LinkRegistry, url: str,
                                                message: str | None) -> None:
    if message is None:
        registry.create_link(url)
        return
    with pytest.raises(ConfigError, match=message) as caught:
        registry.create_link(url)
    assert "\n" not in str(caught.value)


def test_wrapper_sits_in_front_of_udp_and_takes_the_smaller_mtu(registry: LinkRegistry) -> None:
    link = registry.create_link("udp:127.0.0.1:9?mtu=500", via=["sim:?loss=1%&mtu=300"])
    assert isinstance(link, SimWrapper) and link.mtu == 300
    assert link.name == "sim+udp:127.0.0.1:9"
    with pytest.raises(ConfigError, match="takes no target"):
        registry.create_link("udp:127.0.0.1:9", via=["sim:1.2.3.4:5?loss=1%"])
    with pytest.raises(ConfigError, match=r"unknown option 'ab\.loss'"):
        registry.create_link("udp:127.0.0.1:9", via=["sim:?ab.loss=1%"])


def test_lab_sides_take_shared_options_and_their_own_overrides() -> None:
    given = {"loss": "5%", "ab.delay": "40ms", "ba.loss": "1%", "seed": "10", "trace": "/t/x"}
    assert lab_side_options(given, "ab") == {"loss": "5%", "seed": "10", "trace": "/t/x.ab",
                                             "delay": "40ms"}
    assert lab_side_options(given, "ba") == {"loss": "1%", "seed": "11", "trace": "/t/x.ba"}


def test_lab_pair_gives_each_side_its_direction_and_peer() -> None:
    sides = LabSides("nsA", "nsB", "198.18.0.1", "198.18.0.2", cable_paths)
    url = parse_link_url("sim:?loss=5%&ba.delay=10ms&seed=4")
    with SimLink.lab_pair(url, sides) as (url_a, url_b):
        assert str(url_a) == "sim:198.18.0.2:47100?loss=5%&seed=4"
        assert str(url_b) == "sim:198.18.0.1:47100?loss=5%&seed=5&delay=10ms"
    figures = SimLink.lab_configured(url)
    assert figures is not None
    ab, ba = figures
    assert (ab.loss, ab.delay) == (0.05, 0.0) and ba.delay == pytest.approx(0.01)


def test_lab_pair_validates_each_side_before_anything_starts() -> None:
    sides = LabSides("nsA", "nsB", "198.18.0.1", "198.18.0.2", cable_paths)
    with pytest.raises(ConfigError, match=r"\(B -> A\): reorder needs delay="), \
            SimLink.lab_pair(parse_link_url("sim:?delay=5ms&ba.delay=0&reorder=1%"), sides):
        pass
    with pytest.raises(ConfigError, match="chooses the sim: addresses itself"), \
            SimLink.lab_pair(parse_link_url("sim:1.2.3.4:5"), sides):
        pass


def test_lab_figures_use_the_stationary_loss_and_serialisation() -> None:
    figures = SimLink.lab_configured(parse_link_url("sim:?gemodel=1%,10%,70%,0.1%"
                                                    "&rate=9600&overhead=16&delay=40ms"))
    assert figures is not None
    ab, ba = figures
    bad = 0.01 / 0.11
    assert ab.loss == pytest.approx(bad * 0.7 + (1 - bad) * 0.001) and ab == ba
    assert ab.latency(84) == pytest.approx(0.040 + 100 * 8 / 9600)


def test_every_option_has_a_row_in_docs_sim_md_and_every_row_an_option() -> None:
    """The option tables of docs/sim.md and the options `linkbridge links` lists agree."""
    doc = (Path(__file__).parents[2] / "docs" / "sim.md").read_text()
    rows = set(re.findall(r"^\| `([a-z_.]+)[=`]", doc, re.MULTILINE))
    declared = {option.name for option in SimLink.options if "." not in option.name}
    assert declared - rows == set()
    assert rows - declared == set()
