"""Drop reasons (linkbridge/wire/drops.py): status output, docs and tests rely on the strings."""

from __future__ import annotations

import linkbridge.plugin
from linkbridge.plugin import drops
from linkbridge.wire.packet import packet_problem

REASONS = {
    "MTU": "mtu",
    "QUEUE_FULL": "queue_full",
    "SEND_ERROR": "send_error",
    "TOO_BIG": "too_big",
    "FILTERED": "filtered",
    "TUN_WRITE_ERROR": "tun_write_error",
    "NOT_CONNECTED": "not_connected",
    "KEEPALIVE": "keepalive",
    "UNKNOWN_EXTENSION": "unknown_extension",
    "MALFORMED": "malformed_",
    "EMPTY": "empty",
    "TRUNCATED": "truncated",
    "BAD_HEADER_LENGTH": "bad_header_length",
    "LENGTH_MISMATCH": "length_mismatch",
    "NOT_IP": "not_ip",
    "MALFORMED_FRAME": "malformed_frame",
    "FRAGMENT_TOO_BIG": "fragment_too_big",
    "FRAGMENT_BAD_HEADER": "fragment_bad_header",
    "FRAGMENT_DUPLICATE": "fragment_duplicate",
    "FRAGMENT_MISMATCH": "fragment_mismatch",
    "REASSEMBLY_TIMEOUT": "reassembly_timeout",
    "REASSEMBLY_OVERFLOW": "reassembly_overflow",
    "REASSEMBLY_OVERSIZE": "reassembly_oversize",
    "OFFLOAD_BAD_CHUNK": "offload_bad_chunk",
    "OFFLOAD_BAD_HEADER": "offload_bad_header",
    "OFFLOAD_DUPLICATE": "offload_duplicate",
    "OFFLOAD_MISMATCH": "offload_mismatch",
    "OFFLOAD_INCOMPLETE": "offload_incomplete",
    "OFFLOAD_TOO_BIG": "offload_too_big",
    "OFFLOAD_UNAGREED": "offload_unagreed",
    "SLIP_BAD_ESCAPE": "slip_bad_escape",
    "SLIP_OVERSIZE": "slip_oversize",
    "SLIP_GARBAGE": "slip_garbage",
    "CRC": "crc",
    "UNPLUGGED": "unplugged",
    "WRITE_TIMEOUT": "write_timeout",
    "KISS_BAD_ESCAPE": "kiss_bad_escape",
    "KISS_OVERSIZE": "kiss_oversize",
    "KISS_GARBAGE": "kiss_garbage",
    "KISS_CRC": "kiss_crc",
    "KISS_OTHER_PORT": "kiss_other_port",
    "KISS_NOT_DATA": "kiss_not_data",
    "AX25_MALFORMED": "ax25_malformed",
    "AX25_NOT_UI": "ax25_not_ui",
    "AX25_NOT_FOR_US": "ax25_not_for_us",
    "AX25_OTHER_PID": "ax25_other_pid",
    "ARP_ANSWERED": "arp_answered",
    "ARP_IGNORED": "arp_ignored",
    "ETHERNET_OTHER": "ethernet_other",
    "SIM": "sim_",
    "LOSS": "loss",
    "AUTH": "auth",
    "REPLAY": "replay",
    "UNKNOWN_KEY": "unknown_key",
    "NOT_ENCRYPTED": "not_encrypted",
    "NO_SESSION": "no_session",
    "HANDSHAKE_MALFORMED": "handshake_malformed",
    "HANDSHAKE_MAC": "handshake_mac",
    "HANDSHAKE_RATE": "handshake_rate",
    "HANDSHAKE_AUTH": "handshake_auth",
    "HANDSHAKE_PEER": "handshake_peer",
    "HANDSHAKE_REPLAY": "handshake_replay",
    "HANDSHAKE_UNEXPECTED": "handshake_unexpected",
    "HANDSHAKE_CIPHER": "handshake_cipher",
    "COMPRESS_BAD_CHECKSUM": "compress_bad_checksum",
    "COMPRESS_NO_CONTEXT": "compress_no_context",
    "COMPRESS_STALE": "compress_stale",
    "COMPRESS_TOSSED": "compress_tossed",
    "COMPRESS_TRUNCATED": "compress_truncated",
    "COMPRESS_BAD_FRAME": "compress_bad_frame",
}


def test_reasons_keep_their_strings() -> None:
    listed = {name: value for name, value in vars(drops).items() if name.isupper()}
    assert listed == REASONS


def test_plugins_reach_the_reasons_through_the_public_api() -> None:
    assert "drops" in linkbridge.plugin.__all__


def test_packet_problems_are_the_listed_ones() -> None:
    ipv4 = bytes([0x45, 0, 0, 20]) + bytes(16)
    assert packet_problem(b"") == drops.EMPTY
    assert packet_problem(bytes([0x45, 0, 0, 19])) == drops.TRUNCATED
    assert packet_problem(bytes([0x44]) + ipv4[1:]) == drops.BAD_HEADER_LENGTH
    assert packet_problem(ipv4 + b"x") == drops.LENGTH_MISMATCH
    assert packet_problem(bytes([0x50]) + ipv4[1:]) == drops.NOT_IP
    assert packet_problem(ipv4) is None
