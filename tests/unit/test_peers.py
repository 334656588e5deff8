"""The multipoint peer table (linkbridge/wire/peers.py): longest-prefix routing, the source
check, broadcast and multicast, the --peer syntax and its one-line errors."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkbridge.errors import ConfigError
from linkbridge.wire.peers import Peer, PeerTable, parse_peer
from tests.helpers.ip_packets import between


def peer(name: str, *allowed: str, stations: tuple[str, ...] = ()) -> Peer:
    return Peer(name, tuple(ipaddress.ip_network(text) for text in allowed), stations)


HUB = peer("hub", "198.19.0.0/16", "fd00::/48")
B = peer("b", "198.19.2.0/24", "fd00:0:0:2::/64", stations=("198.18.0.2:5000",))
C = peer("c", "198.19.3.0/24", "198.19.2.128/25", stations=("198.18.0.3:5000",))
TABLE = PeerTable([HUB, B, C])


@pytest.mark.parametrize(("address", "expected"), [
    ("198.19.2.1", B), ("198.19.2.200", C), ("198.19.3.9", C), ("198.19.9.9", HUB),
    ("198.18.0.1", None), ("fd00:0:0:2::5", B), ("fd00:0:0:3::5", HUB), ("fd01::1", None),
])
def test_the_longest_prefix_wins(address: str, expected: Peer | None) -> None:
    assert TABLE.route(ipaddress.ip_address(address)) is expected


def test_a_source_is_a_peers_when_the_route_back_leads_to_it() -> None:
    assert TABLE.owns(B, ipaddress.ip_address("198.19.2.7"))
    assert not TABLE.owns(B, ipaddress.ip_address("198.19.2.130"))  # C's longer prefix
    assert not TABLE.owns(HUB, ipaddress.ip_address("198.19.3.1"))
    assert not TABLE.owns(C, ipaddress.ip_address("10.0.0.1"))


def test_packets_go_to_their_peer_and_groups_to_every_peer() -> None:
    assert TABLE.destinations(between("198.19.0.1", "198.19.3.4")) == (C,)
    assert TABLE.destinations(between("198.19.0.1", "10.9.9.9")) == ()
    for group in ("224.0.0.5", "239.1.2.3", "255.255.255.255"):
        assert TABLE.destinations(between("198.19.0.1", group)) == (HUB, B, C)
    assert TABLE.destinations(between("fd00::1", "ff02::1")) == (HUB, B, C)
    assert TABLE.destinations(between("fd00::1", "fd00:0:0:2::9")) == (B,)
    assert TABLE.destinations(b"\x00") == (HUB, B, C)  # a keepalive goes to everyone


def test_a_lookup_costs_the_same_with_1_or_1000_peers() -> None:
    one = PeerTable([peer("p0", "10.0.0.0/24")])
    many = PeerTable([peer(f"p{n}", f"10.{n // 256}.{n % 256}.0/24") for n in range(1000)])
    assert one.lengths(4) == many.lengths(4) == (24,)  # one dict probe either way
    assert many.route(ipaddress.ip_address("10.3.231.9")) is many.peers[999]
    assert TABLE.lengths(4) == (25, 24, 16) and TABLE.lengths(6) == (64, 48)


def test_a_subnet_broadcast_given_goes_to_every_peer() -> None:
    table = PeerTable([B, C], broadcasts=[ipaddress.IPv4Address("198.19.255.255")])
    assert table.destinations(between("198.19.0.1", "198.19.255.255")) == (B, C)
    assert TABLE.destinations(between("198.19.0.1", "198.19.255.255")) == (HUB,)


def test_the_source_check_of_a_received_packet() -> None:
    assert TABLE.sent_by(B, between("198.19.2.5", "198.19.0.1"))
    assert not TABLE.sent_by(B, between("198.19.3.5", "198.19.0.1"))
    assert TABLE.sent_by(B, between("fd00:0:0:2::5", "fd00::1"))
    assert not TABLE.sent_by(B, between("fd00::5", "fd00::1"))
    assert TABLE.sent_by(B, b"\x00")  # no IP packet: the tunnel layer counts it


def test_stations_name_their_peer() -> None:
    assert TABLE.by_station("198.18.0.3:5000") is C
    assert TABLE.by_station("198.18.0.9:5000") is None
    assert TABLE.prefixes()[:2] == HUB.allowed


@pytest.mark.parametrize(("peers", "message"), [
    ([B, peer("b", "10.0.0.0/8")], "peer 'b' is given twice"),
    ([B, peer("x", "198.19.2.0/24")], "peers 'b' and 'x' both have allowed=198.19.2.0/24"),
    ([B, peer("x", "10.0.0.0/8", stations=B.stations)],
     "peers 'b' and 'x' both use station 198.18.0.2:5000"),
])
def test_conflicts_are_one_line_errors(peers: list[Peer], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PeerTable(peers)


def test_the_peer_syntax() -> None:
    parsed = parse_peer("b,allowed=198.19.2.0/24,allowed=fd00:0:0:2::/64,"
                        "endpoint=198.18.0.2:5000,key=/etc/b.pub")
    assert parsed == Peer("b", B.allowed, B.stations, "/etc/b.pub")
    assert parse_peer("c, allowed = 198.19.3.1").allowed == (
        ipaddress.ip_network("198.19.3.1/32"),)


@pytest.mark.parametrize(("text", "message"), [
    ("b", "peer 'b': no allowed= prefix"),
    (",allowed=10.0.0.0/8", "a peer needs a name"),
    ("b,allowed=10.0.0.1/8", r"peer 'b': bad prefix '10.0.0.1/8': .*host bits set"),
    ("b,allowed=300.1.1.1", "peer 'b': bad prefix"),
    ("b,allowed", "peer 'b': expected KEY=VALUE, not 'allowed'"),
    ("b,allowed=10.0.0.0/8,port=3", "peer 'b': unknown key 'port'; valid keys: allowed, "),
    ("b,allowed=10.0.0.0/8,key=a,key=b", "peer 'b': more than one key="),
])
def test_bad_peers_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        parse_peer(text)
    assert "\n" not in str(raised.value)


prefixes = st.one_of(
    st.builds(lambda address, length: ipaddress.ip_network((address, length), strict=False),
              st.integers(0, 2**32 - 1), st.integers(0, 32)),
    st.builds(lambda address, length: ipaddress.ip_network((address, length), strict=False),
              st.integers(0, 2**128 - 1), st.integers(0, 128)))


def naive_route(peers: list[Peer],
                address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> Peer | None:
    """Every prefix of every peer scanned: the longest that contains `address` wins."""
    best: tuple[int, Peer] | None = None
    for one in peers:
        for prefix in one.allowed:
            if prefix.version == address.version and address in prefix and (
                    best is None or prefix.prefixlen > best[0]):
                best = (prefix.prefixlen, one)
    return None if best is None else best[1]


@given(st.lists(st.lists(prefixes, min_size=1, max_size=4), min_size=1, max_size=8,
                unique_by=lambda allowed: tuple(allowed)),
       st.lists(st.one_of(st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address),
                          st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address)),
                max_size=20))
def test_lookup_agrees_with_a_naive_scan(allowed_sets: list[list[ipaddress.IPv4Network]],
                                         addresses: list[ipaddress.IPv4Address]) -> None:
    seen: set[object] = set()
    peers = []
    for index, allowed in enumerate(allowed_sets):  # a prefix on two peers is an error
        unique = tuple(prefix for prefix in dict.fromkeys(allowed) if prefix not in seen)
        seen.update(unique)
        if unique:
            peers.append(Peer(f"p{index}", unique))
    table = PeerTable(peers)
    # the addresses given, and the first and last address of every prefix
    edges = [address for one in peers for prefix in one.allowed
             for address in (prefix.network_address, prefix.broadcast_address)]
    for address in [*addresses, *edges]:
        assert table.route(address) is naive_route(peers, address)
