"""TCP MSS clamping (docs/multilink.md): a SYN's maximum segment size option lowered so that
the connection's full segments fit the smallest link whole. Pure.

Only the option's value changes; the TCP checksum is adjusted for the change (RFC 1624), so a
segment that arrived damaged stays damaged. IPv4 (not a fragment) and IPv6 without extension
headers; any other packet, and a SYN without an MSS option or with one already small enough,
passes as it is.
"""

from __future__ import annotations

from collections.abc import Callable

from linkbridge.wire.compress.sums import ONES, word_sum

TCP = 6
SYN = 0x02
MSS_KIND, MSS_LENGTH = 2, 4
END, NOP = 0, 1
TCP_HEADER = 20
IP_HEADERS = {4: 20, 6: 40}  # the IP header a segment of the largest packet carries


def tcp_offset(packet: bytes) -> int | None:
    """Where the TCP header of `packet` starts (None: not TCP as read here)."""
    version = packet[0] >> 4 if packet else 0
    if version == 4 and len(packet) >= 20:
        start = (packet[0] & 0x0F) * 4
        fragment = int.from_bytes(packet[6:8], "big") & 0x3FFF  # MF or an offset
        return start if packet[9] == TCP and not fragment and start >= 20 else None
    if version == 6 and len(packet) >= 40:
        return 40 if packet[6] == TCP else None
    return None


def mss_at(packet: bytes, tcp: int) -> int | None:
    """The offset of a SYN's MSS value in `packet` (None: not a SYN, or no such option)."""
    if len(packet) < tcp + TCP_HEADER or not packet[tcp + 13] & SYN:
        return None
    end = min(len(packet), tcp + (packet[tcp + 12] >> 4) * 4)
    at = tcp + TCP_HEADER
    while at < end:
        kind = packet[at]
        if kind == END:
            return None
        if kind == NOP:
            at += 1
            continue
        if at + 1 >= end or packet[at + 1] < 2:
            return None  # malformed options: left alone
        if kind == MSS_KIND and packet[at + 1] == MSS_LENGTH and at + MSS_LENGTH <= end:
            return at + 2
        at += packet[at + 1]
    return None


def clamp_mss(packet: bytes, largest: int | Callable[[], int]) -> bytes:
    """`packet` with a TCP SYN's MSS lowered so that a full segment makes a packet of at most
    `largest` bytes (or what `largest()` says, asked for SYNs only); any other packet as it
    is."""
    tcp = tcp_offset(packet)
    at = None if tcp is None else mss_at(packet, tcp)
    if tcp is None or at is None:
        return packet
    limit = largest() if callable(largest) else largest
    mss = limit - IP_HEADERS[packet[0] >> 4] - TCP_HEADER
    if mss <= 0 or int.from_bytes(packet[at:at + 2], "big") <= mss:
        return packet
    clamped = bytearray(packet)
    clamped[at:at + 2] = mss.to_bytes(2, "big")
    # the 16-bit words the value touches, aligned to the TCP header (RFC 1624: HC' = ~(~HC +
    # ~m + m'), here with the sums of the words before and after)
    first = tcp + ((at - tcp) & ~1)
    last = first + (4 if (at - tcp) & 1 else 2)
    delta = word_sum(clamped[first:last]) - word_sum(packet[first:last])
    old = int.from_bytes(packet[tcp + 16:tcp + 18], "big")
    total = ((~old & ONES) + delta) % ONES
    clamped[tcp + 16:tcp + 18] = (~total & ONES).to_bytes(2, "big")
    return bytes(clamped)
