"""The lab's ICMPv6 echo messages (pure parts of the IPv6 ping probe)."""

from __future__ import annotations

import socket
import struct

from linkbridge.lab.probes import (
    ICMPV6_ECHO_REPLY,
    ICMPV6_ECHO_REQUEST,
    echo_reply_seq_v6,
    echo_request_v6,
    family,
)


def test_echo_request_layout() -> None:
    message = echo_request_v6(0x1234, 7, b"data")
    assert message == struct.pack("!BBHHH", ICMPV6_ECHO_REQUEST, 0, 0, 0x1234, 7) + b"data"


def test_reply_parsing_matches_ident_and_type() -> None:
    reply = struct.pack("!BBHHH", ICMPV6_ECHO_REPLY, 0, 0xBEEF, 0x1234, 9) + b"data"
    assert echo_reply_seq_v6(reply, 0x1234) == 9
    assert echo_reply_seq_v6(reply, 0x1235) is None  # someone else's ping
    assert echo_reply_seq_v6(echo_request_v6(0x1234, 9, b""), 0x1234) is None  # a request
    assert echo_reply_seq_v6(reply[:7], 0x1234) is None  # truncated


def test_family_of_address_literals() -> None:
    assert family("fd00:198:19::2") == socket.AF_INET6
    assert family("198.19.0.2") == socket.AF_INET
