"""The peer table of a multipoint tunnel: who each peer is, where on the link it is, and which
IP prefixes belong to it (WireGuard's AllowedIPs). Pure.

A destination goes to the peer with the longest prefix that contains it (`route()`); a source
is a peer's when the same lookup gives that peer (`owns()`): one peer cannot speak for an
address routed to another. A lookup costs one dict probe per distinct prefix length in the
table, longest first (at most 33 for IPv4, 129 for IPv6), however many peers there are.
docs/multipoint.md describes the table, its syntax and what is not done yet.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from linkbridge.errors import ConfigError
from linkbridge.wire.frames import IPV4, IPV6, type_nibble
from linkbridge.wire.packet import IPV4_MIN_HEADER, IPV6_HEADER

Prefix = ipaddress.IPv4Network | ipaddress.IPv6Network
IPV4_BITS = 32
IPV6_BITS = 128
PEER_SYNTAX = "NAME,allowed=PREFIX[,allowed=PREFIX...][,endpoint=STATION][,key=PUBLIC_KEY]"
PEER_KEYS = ("allowed", "endpoint", "key")
IPV4_GROUP, IPV4_GROUP_SHIFT = 0xE, 28  # 224.0.0.0/4: multicast
IPV4_BROADCAST = 0xFFFFFFFF
IPV6_GROUP, IPV6_GROUP_SHIFT = 0xFF, 120  # ff00::/8: multicast


@dataclass(frozen=True)
class Peer:
    """One peer: its name, the link station address(es) it uses (their form is the link's:
    HOST:PORT for udp:), its allowed prefixes and its public key (base64, for encryption)."""

    name: str
    allowed: tuple[Prefix, ...]
    stations: tuple[str, ...] = ()
    key: str | None = None


def parse_prefix(text: str, where: str) -> Prefix:
    """`text` as an IPv4/IPv6 prefix (an address alone is a /32 or /128); host bits set are an
    error, as a typo there routes something else than meant."""
    try:
        return ipaddress.ip_network(text.strip())
    except ValueError as exc:
        raise ConfigError(f"{where}: bad prefix {text!r}: {exc}") from None


def peer_of(name: str, values: Mapping[str, Iterable[str]]) -> Peer:
    """A Peer from its name and its keys (`allowed`, `endpoint`, `key`, each with its values);
    ConfigError names the peer and what is wrong."""
    where = f"peer {name!r}" if name else "peer"
    if not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ConfigError(f"{where}: a peer needs a name of letters, digits, '-', '_' or '.' "
                          f"({PEER_SYNTAX})")
    unknown = sorted(set(values) - set(PEER_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; valid keys: "
                          f"{', '.join(PEER_KEYS)}")
    allowed = tuple(parse_prefix(text, where) for text in values.get("allowed", ()))
    if not allowed:
        raise ConfigError(f"{where}: no allowed= prefix (the addresses routed to the peer)")
    keys = tuple(values.get("key", ()))
    if len(keys) > 1:
        raise ConfigError(f"{where}: more than one key=")
    return Peer(name, allowed, tuple(values.get("endpoint", ())), keys[0] if keys else None)


def parse_peer(text: str) -> Peer:
    """A `--peer NAME,allowed=PREFIX,...,endpoint=STATION,key=PUBLIC_KEY` value; keys may repeat
    (several allowed=; the pipeline decides how many endpoint= a link takes)."""
    name, *items = text.split(",")
    values: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not value:
            raise ConfigError(f"peer {name!r}: expected KEY=VALUE, not {item!r} ({PEER_SYNTAX})")
        values.setdefault(key.strip(), []).append(value.strip())
    return peer_of(name.strip(), values)


def peer_text(table: Mapping[str, object], where: str) -> str:
    """A config file's peer table (`name = "b"`, `allowed = [...]`, `endpoint`, `key`, each a
    string or a list of strings) in the --peer syntax, checked; ConfigError names `where`."""
    values: dict[str, list[str]] = {}
    for key, value in table.items():
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(item, str) for item in items) or (key == "name" and
                                                                 len(items) != 1):
            raise ConfigError(f"{where}.{key}: expected a string"
                              f"{'' if key == 'name' else ' or a list of strings'}, "
                              f"not {value!r}")
        values[key] = [str(item) for item in items]
    name = values.pop("name", [""])[0]
    try:
        peer_of(name, values)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return ",".join([name] + [f"{key}={item}" for key, items in values.items()
                              for item in items])


def link_station(station: str, links: int, where: str) -> tuple[int, str]:
    """A peer's `endpoint=` on a tunnel of `links` links (`--link` repeated), `LINK:STATION`
    with LINK the link's number (1: the first --link): (the link's index from 0, the station in
    the link's notation); ConfigError, naming `where`, for anything else."""
    number, sep, rest = station.partition(":")
    if not sep or not number.isdigit() or not rest or not 1 <= int(number) <= links:
        raise ConfigError(f"{where}: endpoint={station}: with {links} links give each "
                          f"endpoint= as LINK:STATION, LINK 1 to {links} (the --link's number)")
    return int(number) - 1, rest


def _bits(prefix: Prefix) -> int:
    return IPV4_BITS if prefix.version == 4 else IPV6_BITS


class PeerTable:
    """The peers of one tunnel, looked up by destination, source and station.

    Built once from the configured peers (ConfigError on a duplicate name or station, or the
    same prefix on two peers); read by the data path without locks.
    """

    def __init__(self, peers: Iterable[Peer],
                 broadcasts: Iterable[ipaddress.IPv4Address] = ()) -> None:
        self.peers: tuple[Peer, ...] = tuple(peers)
        self._broadcasts = frozenset(int(address) for address in broadcasts)
        # per IP version: [(prefix length, {address >> (bits - length): peer})], longest first
        self._routes: dict[int, list[tuple[int, dict[int, Peer]]]] = {4: [], 6: []}
        self._stations: dict[str, Peer] = {}
        names: set[str] = set()
        by_length: dict[tuple[int, int], dict[int, Peer]] = {}
        for peer in self.peers:
            if peer.name in names:
                raise ConfigError(f"peer {peer.name!r} is given twice")
            names.add(peer.name)
            for station in peer.stations:
                other = self._stations.setdefault(station, peer)
                if other is not peer:
                    raise ConfigError(f"peers {other.name!r} and {peer.name!r} both use "
                                      f"station {station}")
            for prefix in peer.allowed:
                bits = _bits(prefix)
                slot = by_length.setdefault((prefix.version, prefix.prefixlen), {})
                key = int(prefix.network_address) >> (bits - prefix.prefixlen)
                other = slot.setdefault(key, peer)
                if other is not peer:
                    raise ConfigError(f"peers {other.name!r} and {peer.name!r} both have "
                                      f"allowed={prefix}")
        for (version, length), slot in sorted(by_length.items(), key=lambda item: -item[0][1]):
            self._routes[version].append((length, slot))

    def lookup(self, version: int, address: int) -> Peer | None:
        """The peer with the longest prefix containing the IPv`version` `address` (an int), or
        None when no peer's prefixes contain it."""
        bits = IPV4_BITS if version == 4 else IPV6_BITS
        for length, slot in self._routes[version]:
            peer = slot.get(address >> (bits - length))
            if peer is not None:
                return peer
        return None

    def lengths(self, version: int) -> tuple[int, ...]:
        """The prefix lengths of IPv`version` in the table, longest first: a lookup probes one
        dict for each, so its cost depends on these, not on the number of peers."""
        return tuple(length for length, _slot in self._routes[version])

    def route(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> Peer | None:
        """The peer a packet to `address` goes to (longest prefix wins), or None."""
        return self.lookup(address.version, int(address))

    def owns(self, peer: Peer, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        """Whether `peer` may send from `address`: the route back to it leads to `peer`."""
        return self.route(address) is peer

    def destinations(self, packet: bytes) -> tuple[Peer, ...]:
        """The peers a packet (or a frame of the tunnel layer) goes to: the one its destination
        routes to; every peer for IPv4 broadcast and multicast, IPv6 multicast and frames that
        are no IP packet (a keepalive); none when no peer owns the destination."""
        version = type_nibble(packet[0]) if packet else 0
        if version == IPV4 and len(packet) >= IPV4_MIN_HEADER:
            address = int.from_bytes(packet[16:20], "big")
            if address >> IPV4_GROUP_SHIFT == IPV4_GROUP or address == IPV4_BROADCAST \
                    or address in self._broadcasts:
                return self.peers
        elif version == IPV6 and len(packet) >= IPV6_HEADER:
            address = int.from_bytes(packet[24:40], "big")
            if address >> IPV6_GROUP_SHIFT == IPV6_GROUP:
                return self.peers
        else:
            return self.peers
        peer = self.lookup(version, address)  # the type nibble of an IP packet is its version
        return () if peer is None else (peer,)

    def sent_by(self, peer: Peer, packet: bytes) -> bool:
        """Whether `peer` may have sent `packet`: its source routes back to `peer`. Frames that
        are no IP packet pass (the tunnel layer counts them)."""
        version = type_nibble(packet[0]) if packet else 0
        if version == IPV4 and len(packet) >= IPV4_MIN_HEADER:
            return self.lookup(4, int.from_bytes(packet[12:16], "big")) is peer
        if version == IPV6 and len(packet) >= IPV6_HEADER:
            return self.lookup(6, int.from_bytes(packet[8:24], "big")) is peer
        return True

    def by_station(self, station: str) -> Peer | None:
        """The peer that uses link station `station`, or None."""
        return self._stations.get(station)

    def prefixes(self) -> tuple[Prefix, ...]:
        """Every allowed prefix of every peer: the routes through the tunnel."""
        return tuple(prefix for peer in self.peers for prefix in peer.allowed)
