"""Hostile input at every parser a peer or a user can reach: nothing but a clean error escapes.

With `--long` every hypothesis test here (and in tests/unit) runs 20,000 examples.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from linkbridge.datapath.bridge import Bridge
from linkbridge.errors import ConfigError
from linkbridge.plugin.registry import LinkRegistry, get_plugin_manager
from linkbridge.testing import MemoryEndpoint
from linkbridge.wire.packet import packet_problem

REGISTRY = LinkRegistry(get_plugin_manager())
URL_ALPHABET = st.sampled_from(list("udpsimerl:?&=%[]./0123456789abcdefxyz _-"))


@given(st.text(URL_ALPHABET, max_size=80) | st.text(max_size=80))
def test_link_urls_build_a_link_or_raise_config_error(text: str) -> None:
    try:
        link = REGISTRY.create_link(text)
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc).replace(text, "")
    else:
        link.close()


@given(st.binary(max_size=2048))
def test_any_frame_is_accepted_only_when_well_formed(frame: bytes) -> None:
    problem = packet_problem(frame)
    if problem is None:
        assert frame[0] >> 4 in (4, 6)


@given(st.lists(st.binary(max_size=100), max_size=30))
def test_datapath_lets_only_valid_packets_toward_the_tunnel(frames: list[bytes]) -> None:
    tunnel, link = MemoryEndpoint("tun"), MemoryEndpoint("link")
    link.feed(*frames)
    bridge = Bridge(tunnel, link)
    bridge.start()
    expected = [frame for frame in frames if packet_problem(frame) is None]
    bridge.stop.wait(0.01)
    while len(tunnel.sent) < len(expected) and not bridge.stop.is_set():
        bridge.stop.wait(0.001)
    tunnel.close()  # wakes the bridge's threads waiting in receive()
    link.close()
    bridge.close()
    assert tunnel.sent == expected
    assert sum(link.counters.drops.values()) == len(frames) - len(expected)
