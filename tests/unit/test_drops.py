"""Drop reasons (linkbridge/wire/drops.py, the codecs' and the plugins' own): status output, docs
and tests rely on the strings; every reason counted is described."""

from __future__ import annotations

import linkbridge.plugin
from linkbridge.plugin import drops
from linkbridge.plugin.codecs import crc16, kiss, slip
from linkbridge.plugin.registry import plugin_registry
from linkbridge.wire.packet import packet_problem

NAMES = {
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
    "REPAIR_MALFORMED": "repair_malformed",
    "REPAIR_DUPLICATE": "repair_duplicate",
    "REPAIR_UNREPAIRED": "repair_unrepaired",
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
    "UNPLUGGED": "unplugged",
    "WRITE_TIMEOUT": "write_timeout",
    "AUTH": "auth",
    "REPLAY": "replay",
    "UNKNOWN_KEY": "unknown_key",
    "NOT_ENCRYPTED": "not_encrypted",
    "NO_SESSION": "no_session",
    "HANDSHAKE_MALFORMED": "handshake_malformed",
    "HANDSHAKE_MAC": "handshake_mac",
    "HANDSHAKE_RATE": "handshake_rate",
    "HANDSHAKE_DUPLICATE": "handshake_duplicate",
    "HANDSHAKE_COOKIE": "handshake_cookie",
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
    "QUEUE_RETRANSMIT": "queue_retransmit",
    "QUEUE_ACK_FILTERED": "queue_ack_filtered",
    "QUEUE_OVERFLOW": "queue_overflow",
    "NO_PEER": "no_peer",
    "SOURCE_NOT_ALLOWED": "source_not_allowed",
    "ROAM_REFUSED": "roam_refused",
    "ROAM_RATE": "roam_rate",
    "DUPLICATE": "duplicate",
    "LINK_PROBE_MALFORMED": "link_probe_malformed",
}


def test_reasons_keep_their_strings() -> None:
    listed = {name: value for name, value in vars(drops).items()
              if name.isupper() and name != "REASONS"}
    assert listed == NAMES


def test_every_core_reason_is_described_on_one_line() -> None:
    problems = {drops.EMPTY, drops.TRUNCATED, drops.BAD_HEADER_LENGTH, drops.LENGTH_MISMATCH,
                drops.NOT_IP}
    counted = {value for value in NAMES.values() if value != drops.MALFORMED} - problems
    assert counted | {drops.EMPTY} <= set(drops.REASONS)
    assert {drops.MALFORMED + problem for problem in problems} <= set(drops.REASONS)
    assert all(text and "\n" not in text and len(text) <= 80 for text in drops.REASONS.values())


def test_codecs_and_plugins_name_their_own_reasons_and_keep_the_strings() -> None:
    declared = {reason for entry in plugin_registry().links.values()
                for reason in entry.cls.drop_reasons}
    assert {*slip.REASONS, *crc16.REASONS} == {"slip_bad_escape", "slip_oversize",
                                               "slip_garbage", "crc"}
    assert set(kiss.REASONS) == {"kiss_bad_escape", "kiss_oversize", "kiss_garbage",
                                 "kiss_crc", "kiss_other_port", "kiss_not_data"}
    assert {"ax25_malformed", "ax25_not_ui", "ax25_not_for_us", "ax25_other_pid",
            "arp_answered", "arp_ignored", "ethernet_other", "sim_mtu", "sim_loss",
            "sim_queue_full", *slip.REASONS, *crc16.REASONS, *kiss.REASONS} <= declared
    assert not declared & set(drops.REASONS), "a plugin declares a core reason again"


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
