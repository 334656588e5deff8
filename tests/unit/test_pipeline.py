"""The pipeline as data (datapath/pipeline.py, wire/stack.py): validate() decides which layers
run and at what frame sizes, or names the conflict; build() opens a plan over in-memory links
(linkbridge.testing) in send order, undoes it all when a layer fails, and sizes offload chunks
through the PathMtu capability the encrypt layer passes on."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from linkbridge.datapath.bridge import Bridge
from linkbridge.datapath.compressing import CompressingEndpoint
from linkbridge.datapath.datagram import DatagramEndpoint
from linkbridge.datapath.encrypting import EncryptingEndpoint, open_layer
from linkbridge.datapath.endpoint import OffloadLayer, PathMtu
from linkbridge.datapath.fragmenting import FragmentingEndpoint
from linkbridge.datapath.offloading import OffloadingTunnel, frame_problem
from linkbridge.datapath.pipeline import (
    COMPRESS_NEEDS_LINK,
    DEFAULT_MTU,
    ENCRYPT_NEEDS_LINK,
    Capture,
    LinkBelow,
    LocalPorts,
    Lower,
    Pipeline,
    Plan,
    TunDevice,
    Upper,
    build,
    validate,
)
from linkbridge.errors import ConfigError, LinkbridgeError
from linkbridge.testing import MemoryEndpoint, MemoryLink, memory_link_pair
from linkbridge.wire.frames import SEND_ORDER, Layer
from linkbridge.wire.noise import public_bytes
from linkbridge.wire.offload import ALL_OFFLOADS
from linkbridge.wire.packet import packet_problem
from linkbridge.wire.secure import OVERHEAD, StaticKeys, Timers
from linkbridge.wire.stack import Compress, Encrypt, Fragment, Offload
from tests.helpers.ip_packets import echo
from tests.unit.test_offloading_endpoint import FakeDevice

PORTS = LocalPorts(2001, 2002, "127.0.0.1")


def encrypts() -> tuple[Encrypt, Encrypt]:
    keys = [X25519PrivateKey.generate() for _ in range(2)]
    return (Encrypt(StaticKeys(keys[0], public_bytes(keys[1])), Timers()),
            Encrypt(StaticKeys(keys[1], public_bytes(keys[0])), Timers()))


def over_link(link: MemoryLink | None = None, *, mtu: int | None = None,
              offload: str = "off", compress: str = "off", encrypt: Encrypt | None = None,
              fragment: str = "auto", capture: bool = False, keepalive: bool = False,
              above: TunDevice | LocalPorts | None = None) -> Pipeline:
    """A pipeline under a TUN device over `link` (a `memory:` link by default)."""
    return Pipeline(
        above=above or TunDevice(mtu),
        upper=Upper(Offload(offload), Compress(compress), encrypt),
        lower=Lower(LinkBelow(link or MemoryLink("x")), Fragment(fragment)),
        capture=Capture("x.pcap", 1000) if capture else None,
        keepalive=keepalive)


def memory_link(mtu: int | None) -> MemoryLink:
    return MemoryLink("x", {"mtu": mtu} if mtu else {})


# validate(): pure

def test_a_bare_link_runs_no_layer_and_gives_its_mtu_to_the_tunnel() -> None:
    plan = validate(over_link(memory_link(1000)))
    assert (plan.tunnel_mtu, plan.offload_frame, plan.fragment_frame) == (1000, None, None)
    assert plan.layers == (Layer.TUNNEL, Layer.LINK)
    assert validate(over_link()).tunnel_mtu == DEFAULT_MTU


def test_layers_run_in_the_registered_order() -> None:
    plan = validate(over_link(memory_link(500), mtu=1400, compress="auto",
                              encrypt=encrypts()[0]))
    assert plan.layers == (Layer.TUNNEL, Layer.COMPRESS, Layer.ENCRYPT, Layer.FRAGMENT,
                           Layer.LINK)
    assert plan.layers == tuple(layer for layer in SEND_ORDER if layer in plan.layers)


def test_encryption_takes_its_overhead_from_the_tunnel_mtu_or_fragments() -> None:
    sealed = validate(over_link(memory_link(1000), encrypt=encrypts()[0]))
    assert (sealed.tunnel_mtu, sealed.fragment_frame) == (1000 - OVERHEAD, None)
    split = validate(over_link(memory_link(1000), mtu=1000, encrypt=encrypts()[0]))
    assert (split.tunnel_mtu, split.fragment_frame) == (1000, 1000)


def test_fragment_modes() -> None:
    assert validate(over_link(memory_link(500), mtu=1400)).fragment_frame == 500
    assert validate(over_link(memory_link(500), mtu=1400, fragment="never")).fragment_frame \
        is None
    assert validate(over_link(mtu=1400, fragment="always")).fragment_frame == 0  # reassembles
    with pytest.raises(ConfigError, match="cannot fragment into 4-byte frames"):
        validate(over_link(memory_link(4), mtu=1400))


def test_offload_chunks_in_place_of_fragments() -> None:
    plan = validate(over_link(memory_link(1000), mtu=1400, offload="on"))
    assert (plan.offload_frame, plan.fragment_frame) == (1000, None)
    assert plan.layers == (Layer.TUNNEL, Layer.OFFLOAD, Layer.LINK)
    sealed = validate(over_link(memory_link(1000), offload="auto", encrypt=encrypts()[0]))
    assert sealed.offload_frame == 1000 - OVERHEAD


@pytest.mark.parametrize(("options", "why"), [
    ({"compress": "auto"}, "--compress"),
    ({"capture": True}, "--pcap"),
    ({"fragment": "always"}, "--fragment always"),
    ({"link": MemoryLink("x", {"mtu": 590}), "encrypt": encrypts()[0]},
     "link frames under 596 bytes with encryption"),
])
def test_offload_auto_gives_way_and_on_names_the_layer(options: dict[str, object],
                                                       why: str) -> None:
    assert validate(over_link(offload="auto", **options)).offload_frame is None  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as error:
        validate(over_link(offload="on", **options))  # type: ignore[arg-type]
    assert str(error.value) == (f"--offload on cannot run with {why} (docs/offload.md); "
                                "--offload auto leaves it off instead")


def test_unknown_offload_flags_are_refused() -> None:
    with pytest.raises(ConfigError, match="--offload-flags: unknown offload 'tso9'"):
        validate(Pipeline(TunDevice(), Upper(Offload("auto", "tso9")), Lower(LinkBelow(
            MemoryLink("x")))))


@pytest.mark.parametrize(("options", "words"), [
    ({"mtu": 1400, "link": MemoryLink("x", {"mtu": 500})}, "fragmentation"),
    ({"encrypt": encrypts()[0]}, "encryption"),
    ({"keepalive": True}, "keepalives"),
])
def test_vj_owns_the_link(options: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError, match=f"vj cannot share a link with {words}"):
        validate(over_link(compress="vj", **options))  # type: ignore[arg-type]
    assert Layer.COMPRESS in validate(over_link(compress="auto", **options)).layers  # type: ignore[arg-type]


def test_local_ports_below_carry_plain_packets() -> None:
    plain = validate(Pipeline(TunDevice(), Upper(), Lower(PORTS)))
    assert (plain.tunnel_mtu, plain.layers) == (DEFAULT_MTU, (Layer.TUNNEL, Layer.LINK))
    for upper, message in ((Upper(encrypt=encrypts()[0]), ENCRYPT_NEEDS_LINK),
                           (Upper(compress=Compress("auto")), COMPRESS_NEEDS_LINK)):
        with pytest.raises(ConfigError) as error:
            validate(Pipeline(TunDevice(), upper, Lower(PORTS)))
        assert str(error.value) == message
    with pytest.raises(ConfigError, match="cannot run with local ports"):
        validate(Pipeline(TunDevice(), Upper(Offload("on")), Lower(PORTS)))


def test_local_ports_above_know_no_tunnel_mtu() -> None:
    link = memory_link(500)
    assert validate(over_link(link, above=PORTS)).fragment_frame is None  # auto never splits
    plan = validate(over_link(link, above=PORTS, fragment="always", offload="on"))
    assert (plan.tunnel_mtu, plan.fragment_frame, plan.offload_frame) == (0, 500, None)


# build(): the in-memory doubles

@pytest.fixture
def stack() -> Iterator[contextlib.ExitStack]:
    with contextlib.ExitStack() as opened:
        yield opened


def test_two_built_stacks_carry_packets_through_every_layer(stack: contextlib.ExitStack
                                                            ) -> None:
    links = memory_link_pair({"mtu": 300})
    keys = encrypts()
    sides = []
    for link, encrypt in zip(links, keys, strict=True):
        plan = validate(over_link(link, mtu=1400, compress="auto", encrypt=encrypt))
        sides.append(build(plan, stack, MemoryEndpoint(f"tun-{link.target}")))
    a, b = sides
    assert all(link.opened for link in links)
    assert isinstance(a.link_side, CompressingEndpoint)
    encrypting = a.link_side.below
    assert isinstance(encrypting, EncryptingEndpoint)
    assert isinstance(encrypting.below, FragmentingEndpoint) and encrypting.below.below is links[0]
    # the handshake (initiation, response, keepalive): each layer's handshake thread does its
    # Diffie-Hellman work while the receives wait for what it sends
    for _ in range(1000):
        if encrypting.channel.status(0.0)["state"] == "established":
            break
        a.link_side.receive(0.005)
        b.link_side.receive(0.005)
    b.link_side.receive(0.5)  # A's keepalive confirms B's session
    packet = echo(payload=bytes(1200))  # over the link MTU: fragmented
    a.link_side.send(packet)
    assert b.link_side.receive(0) == [packet]
    assert a.check is packet_problem and a.tunnel_side.name == "tun-a"


def test_a_layer_that_fails_undoes_what_was_opened(stack: contextlib.ExitStack) -> None:
    link = MemoryLink("x")
    plan = validate(over_link(link, offload="on"))
    too_small = Plan(plan.description, plan.tunnel_mtu, 100, None)  # no device takes that
    device = FakeDevice(ALL_OFFLOADS)
    stack.callback(device.close)
    with contextlib.ExitStack() as inner, pytest.raises(LinkbridgeError, match="at least"):
        build(too_small, inner, device)
    assert link.opened and link.closed


def test_a_tun_device_above_is_given_by_the_caller(stack: contextlib.ExitStack) -> None:
    with pytest.raises(ValueError, match="opened by tunnel/"):
        build(validate(over_link()), stack)


class NarrowPath(MemoryEndpoint):
    """An endpoint whose path takes frames of at most 1200 bytes."""

    def path_frame_size(self, frame_size: int) -> int:
        return min(frame_size, 1200)


def test_path_mtu_is_passed_on_less_each_layers_overhead(stack: contextlib.ExitStack) -> None:
    layer = open_layer(NarrowPath(), encrypts()[0], stack)
    assert isinstance(layer, PathMtu)
    assert layer.path_frame_size(1400) == 1200 - OVERHEAD
    assert layer.path_frame_size(1000) == 1000
    assert open_layer(MemoryEndpoint(), encrypts()[0], stack).path_frame_size(1400) == 1400


class NarrowLink(MemoryLink):
    """A `memory:` link whose path takes frames of at most 1200 bytes."""

    def path_frame_size(self, frame_size: int) -> int:
        return min(frame_size, 1200)


def test_offload_chunks_fit_the_path_below_the_encrypt_layer(stack: contextlib.ExitStack
                                                            ) -> None:
    plan = validate(over_link(NarrowLink("x"), offload="on", encrypt=encrypts()[0]))
    assert plan.offload_frame == DEFAULT_MTU - OVERHEAD
    device = FakeDevice(ALL_OFFLOADS)
    stack.callback(device.close)
    opened = build(plan, stack, device)
    assert isinstance(opened.tunnel_side, OffloadingTunnel)
    assert isinstance(opened.tunnel_side, OffloadLayer)  # the bridge runs offload_poller()
    assert not isinstance(device, OffloadLayer) and not isinstance(opened.link_side, OffloadLayer)
    assert opened.tunnel_side.frame_size == 1200 - OVERHEAD
    assert opened.check is frame_problem
    assert opened.tunnel_side.below is opened.link_side  # its hellos go down the stack


def test_the_bridge_runs_the_offload_loop_over_the_offload_layer(stack: contextlib.ExitStack
                                                                 ) -> None:
    """The bridge recognises the offload layer by its capability (OffloadLayer), as it
    recognises a TUN device and a UDP socket by their raw ports, never by class."""
    device = FakeDevice(ALL_OFFLOADS)
    stack.callback(device.close)
    udp = DatagramEndpoint("udp", ("127.0.0.1", 0), ("127.0.0.1", 9))
    stack.callback(udp.close)
    offloading = Bridge(OffloadingTunnel(device, 1400), udp)
    stack.callback(offloading.close)
    general = Bridge(MemoryEndpoint(), udp)
    stack.callback(general.close)
    assert offloading.lean and not general.lean
