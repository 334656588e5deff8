"""Van Jacobson TCP/IP header compression (RFC 1144), as the Linux kernel's cslip frames it.

A frame's first byte says what it is: 0x40-0x6F an IP packet as is, 0x70-0x7F an uncompressed
TCP packet whose IP protocol byte carries the connection (slot) number, 0x80-0xFF a compressed
TCP header (0x80 | C I P S A W U change bits). Only IPv4 TCP with ACK and no SYN/FIN/RST is
compressed, and only while its options stay the same (so not with TCP timestamps). 16 slots,
as the kernel uses. Beyond RFC 1144 the decompressor verifies every rebuilt packet's TCP
checksum and drops it (counted) when it does not hold. Pure: no I/O.

RFC 1144's limit: a compressed frame is coded against the previous packet of its connection,
and one without a connection number belongs to the connection of the frame before it. The
decompressor learns of a lost frame only when the framing below reports it (`frame_lost()`,
RFC 1144's TYPE_ERROR). After a frame lost silently, a later frame can be rebuilt against the
wrong reference: wrong numbers (IP ID, sequence, ack, window) or even the addresses, ports and
other fixed fields of another connection, with its own payload, PSH and URG; only the 16-bit
TCP checksum stands between such a packet and delivery (docs/compression.md).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from linkbridge.wire.compress.sums import checksum, pseudo_sum, transport_valid, word_sum
from linkbridge.wire.drops import (
    COMPRESS_BAD_CHECKSUM,
    COMPRESS_BAD_FRAME,
    COMPRESS_NO_CONTEXT,
    COMPRESS_TOSSED,
    COMPRESS_TRUNCATED,
)
from linkbridge.wire.frames import IPV4, VJ_UNCOMPRESSED_TCP, frame_byte, low_nibble, type_nibble

SLOTS = 16
MAX_PACKET = 0xFFFF  # the longest IPv4 packet
TYPE_UNCOMPRESSED = frame_byte(VJ_UNCOMPRESSED_TCP)
TYPE_COMPRESSED = 0x80  # RFC 1144's flag bit, set in every compressed frame (0x80-0xFF)
NEW_C, NEW_I, TCP_PUSH, NEW_S, NEW_A, NEW_W, NEW_U = 0x40, 0x20, 0x10, 0x08, 0x04, 0x02, 0x01
SPECIALS = NEW_S | NEW_A | NEW_W | NEW_U
SPECIAL_I = NEW_S | NEW_W | NEW_U  # echoed interactive data: seq and ack move by the last length
SPECIAL_D = SPECIALS  # unidirectional data: seq moves by the last packet's data length
FIN, SYN, RST, PSH, ACK, URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
TCP = 6
_TCP_FIELDS = struct.Struct("!IIxBHHH")  # seq, ack, flags, window, checksum, urgent
_SEQ_ACK = struct.Struct("!II")
_FLAGS_TO_URGENT = struct.Struct("!BHHH")  # from TCP byte 13 on
Drop = Callable[[str], None]


def _delta(value: int) -> bytes:
    """RFC 1144's number code: 1..255 in one byte, anything else as 0 and two bytes."""
    return bytes((value,)) if 0 < value < 256 else b"\0" + value.to_bytes(2, "big")


def _read_delta(frame: bytes, offset: int) -> tuple[int, int]:
    if frame[offset]:
        return frame[offset], offset + 1
    return int.from_bytes(frame[offset + 1:offset + 3], "big"), offset + 3


def tcp_header_length(packet: bytes) -> int | None:
    """The IPv4 + TCP header length of a packet VJ may handle (plain IPv4 TCP, not a fragment,
    whole headers), else None."""
    if len(packet) < 40 or type_nibble(packet[0]) != IPV4 or packet[9] != TCP:
        return None
    ihl = low_nibble(packet[0]) * 4
    if ihl < 20 or int.from_bytes(packet[6:8], "big") & 0x3FFF or len(packet) < ihl + 20:
        return None
    hlen = ihl + (packet[ihl + 12] >> 4) * 4
    if hlen < ihl + 20 or hlen > len(packet) or int.from_bytes(packet[2:4], "big") != len(packet):
        return None
    return hlen


class _Slot:
    """One connection's last header (IP + TCP) as both ends hold it."""

    __slots__ = ("header", "key")

    def __init__(self, key: bytes, header: bytes) -> None:
        self.key = key
        self.header = header


class VjCompressor:
    """Compresses IPv4 TCP headers against the previous packet of the same connection."""

    def __init__(self, slots: int = SLOTS) -> None:
        self._slots: dict[bytes, int] = {}  # connection key -> slot, least recently used first
        self._state: list[_Slot | None] = [None] * slots
        self._last_sent: int | None = None

    def feedback(self, frame: bytes) -> None:
        """VJ has no feedback: the receiver waits for TCP to retransmit."""

    def compress(self, packet: bytes) -> bytes:
        """The frame for `packet`: compressed TCP, uncompressed TCP (0x7X) or the packet itself."""
        hlen = tcp_header_length(packet)
        if hlen is None:
            return packet
        ihl = low_nibble(packet[0]) * 4
        if packet[ihl + 13] & (SYN | FIN | RST | ACK) != ACK:
            return packet
        key = packet[12:20] + packet[ihl:ihl + 4]
        slot_id = self._slots.pop(key, None)
        if slot_id is None:
            slot_id = self._free_slot()
            self._slots[key] = slot_id
            return self._uncompressed(packet, hlen, slot_id, key)
        self._slots[key] = slot_id  # now the most recently used
        slot = self._state[slot_id]
        assert slot is not None
        changes = self._changes(packet, ihl, hlen, slot.header)
        if changes is None:
            return self._uncompressed(packet, hlen, slot_id, key)
        bits, fields = changes
        slot.header = packet[:hlen]
        head = bytearray((TYPE_COMPRESSED | bits,))
        if slot_id != self._last_sent:
            head[0] |= NEW_C
            head.append(slot_id)
            self._last_sent = slot_id
        head += packet[ihl + 16:ihl + 18]  # the TCP checksum as it is
        return bytes(head) + fields + packet[hlen:]

    def _free_slot(self) -> int:
        for slot_id, slot in enumerate(self._state):
            if slot is None:
                return slot_id
        oldest = next(iter(self._slots))
        return self._slots.pop(oldest)

    def _uncompressed(self, packet: bytes, hlen: int, slot_id: int, key: bytes) -> bytes:
        self._state[slot_id] = _Slot(key, packet[:hlen])
        self._last_sent = slot_id
        return (bytes((frame_byte(VJ_UNCOMPRESSED_TCP, low_nibble(packet[0])),)) + packet[1:9]
                + bytes((slot_id,)) + packet[10:])

    @staticmethod
    def _changes(packet: bytes, ihl: int, hlen: int, old: bytes) -> tuple[int, bytes] | None:
        """(change bits, encoded fields) against the slot's `old` header; None: send it
        uncompressed (something changed that VJ does not encode)."""
        if (packet[0:2] != old[0:2] or packet[6:10] != old[6:10] or len(old) != hlen
                or packet[20:ihl] != old[20:ihl] or packet[ihl + 12] != old[ihl + 12]
                or (packet[ihl + 13] ^ old[ihl + 13]) & ~(PSH | URG)
                or packet[ihl + 20:hlen] != old[ihl + 20:hlen]):
            return None
        seq, ack, flags, window, _sum, urgent = _TCP_FIELDS.unpack_from(packet, ihl + 4)
        old_seq, old_ack, _f, old_window, _s, old_urgent = _TCP_FIELDS.unpack_from(old, ihl + 4)
        bits, fields = 0, b""
        if flags & URG:
            fields += _delta(urgent)
            bits |= NEW_U
        elif urgent != old_urgent:
            return None
        if delta_w := (window - old_window) & 0xFFFF:
            fields += _delta(delta_w)
            bits |= NEW_W
        if delta_a := (ack - old_ack) & 0xFFFFFFFF:
            if delta_a > 0xFFFF:
                return None
            fields += _delta(delta_a)
            bits |= NEW_A
        if delta_s := (seq - old_seq) & 0xFFFFFFFF:
            if delta_s > 0xFFFF:
                return None
            fields += _delta(delta_s)
            bits |= NEW_S
        old_data = int.from_bytes(old[2:4], "big") - hlen
        if bits == 0:
            # a data packet after a bare ack goes compressed; a repeat (retransmission,
            # window probe) goes uncompressed in case the other end missed the last one
            if not (len(packet) != int.from_bytes(old[2:4], "big") and old_data == 0):
                return None
        elif bits in (SPECIAL_I, SPECIAL_D):
            return None
        elif old[ihl + 13] & URG:
            pass  # a special leaves URG as it was at an RFC 1144 decompressor: send the deltas
        elif bits == NEW_S | NEW_A and delta_s == delta_a == old_data:
            bits, fields = SPECIAL_I, b""
        elif bits == NEW_S and delta_s == old_data:
            bits, fields = SPECIAL_D, b""
        if (delta_i := (int.from_bytes(packet[4:6], "big")
                        - int.from_bytes(old[4:6], "big")) & 0xFFFF) != 1:
            fields += _delta(delta_i)
            bits |= NEW_I
        if flags & PSH:
            bits |= TCP_PUSH
        return bits, fields


class VjDecompressor:
    """Rebuilds packets from VJ frames; frames of other types pass through unchanged.

    After an error it tosses compressed frames until one names its connection again (RFC 1144
    section 4.3), counted as COMPRESS_TOSSED.
    """

    def __init__(self, drop: Drop, slots: int = SLOTS) -> None:
        self._drop = drop
        self._state: list[bytes | None] = [None] * slots
        self._last: int | None = None
        self._toss = True

    @staticmethod
    def is_feedback(frame: bytes) -> bool:
        """VJ has no feedback frames."""
        return False

    def take_feedback(self) -> list[bytes]:
        """VJ sends no feedback."""
        return []

    def frame_lost(self) -> None:
        """The framing below lost or damaged a frame (RFC 1144's TYPE_ERROR): toss compressed
        frames until one names its connection or an uncompressed one arrives."""
        self._toss = True

    def feed(self, frame: bytes, now: float = 0.0) -> bytes | None:
        """The packet `frame` carries, or None (counted) when it cannot be rebuilt."""
        del now  # VJ keeps no time
        if not frame:
            return frame
        kind = frame[0]
        if kind & TYPE_COMPRESSED:
            return self._compressed(frame)
        if type_nibble(kind) == VJ_UNCOMPRESSED_TCP:
            return self._uncompressed(frame)
        return frame

    def _fail(self, reason: str) -> None:
        self._toss = True
        self._drop(reason)

    def _uncompressed(self, frame: bytes) -> bytes | None:
        if len(frame) < 40:
            self._fail(COMPRESS_TRUNCATED)
            return None
        slot_id = frame[9]
        packet = (bytes((frame_byte(IPV4, low_nibble(frame[0])),)) + frame[1:9] + bytes((TCP,))
                  + frame[10:])
        hlen = tcp_header_length(packet)
        if slot_id >= len(self._state) or hlen is None:
            self._fail(COMPRESS_BAD_FRAME)
            return None
        if word_sum(packet[:low_nibble(packet[0]) * 4]) or not _tcp_valid(packet):
            self._fail(COMPRESS_BAD_CHECKSUM)
            return None
        self._state[slot_id] = packet[:hlen]
        self._last, self._toss = slot_id, False
        return packet

    def _compressed(self, frame: bytes) -> bytes | None:
        changes, offset = frame[0], 1
        try:
            if changes & NEW_C:
                slot_id, offset = frame[1], 2
                if slot_id >= len(self._state):
                    self._fail(COMPRESS_BAD_FRAME)
                    return None
                self._last, self._toss = slot_id, False
            elif self._toss:
                self._drop(COMPRESS_TOSSED)
                return None
            old = self._state[self._last] if self._last is not None else None
            if old is None:
                self._fail(COMPRESS_NO_CONTEXT)
                return None
            return self._rebuild(frame, changes, offset, old)
        except IndexError:
            self._fail(COMPRESS_TRUNCATED)
            return None

    def _rebuild(self, frame: bytes, changes: int, offset: int, old: bytes) -> bytes | None:
        ihl = low_nibble(old[0]) * 4
        hlen = len(old)
        tcp_sum = frame[offset:offset + 2]
        offset += 2
        if len(tcp_sum) < 2:
            raise IndexError("checksum")
        seq, ack, flags, window, _sum, urgent = _TCP_FIELDS.unpack_from(old, ihl + 4)
        # PSH and URG are the frame's: a special (never sent with URG) clears URG too
        flags = (flags | PSH if changes & TCP_PUSH else flags & ~PSH) & ~URG
        old_data = int.from_bytes(old[2:4], "big") - hlen
        special = changes & SPECIALS
        if special == SPECIAL_I:
            seq, ack = seq + old_data, ack + old_data
        elif special == SPECIAL_D:
            seq += old_data
        else:
            if changes & NEW_U:
                flags |= URG
                urgent, offset = _read_delta(frame, offset)
            if changes & NEW_W:
                delta, offset = _read_delta(frame, offset)
                window += delta
            if changes & NEW_A:
                delta, offset = _read_delta(frame, offset)
                ack += delta
            if changes & NEW_S:
                delta, offset = _read_delta(frame, offset)
                seq += delta
        ip_id = int.from_bytes(old[4:6], "big")
        if changes & NEW_I:
            delta, offset = _read_delta(frame, offset)
            ip_id += delta
        else:
            ip_id += 1
        if offset > len(frame):
            raise IndexError("fields")
        payload = frame[offset:]
        if hlen + len(payload) > MAX_PACKET:  # no compressor sends a packet IPv4 cannot carry
            self._fail(COMPRESS_BAD_FRAME)
            return None
        header = bytearray(old)
        header[2:4] = (hlen + len(payload)).to_bytes(2, "big")
        header[4:6] = (ip_id & 0xFFFF).to_bytes(2, "big")
        header[10:12] = b"\0\0"
        header[10:12] = checksum(header[:ihl]).to_bytes(2, "big")
        _SEQ_ACK.pack_into(header, ihl + 4, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF)
        _FLAGS_TO_URGENT.pack_into(header, ihl + 13, flags, window & 0xFFFF,
                                   int.from_bytes(tcp_sum, "big"), urgent & 0xFFFF)
        packet = bytes(header) + payload
        if not _tcp_valid(packet):
            self._fail(COMPRESS_BAD_CHECKSUM)
            return None
        assert self._last is not None
        self._state[self._last] = packet[:hlen]
        return packet


def _tcp_valid(packet: bytes) -> bool:
    ihl = low_nibble(packet[0]) * 4
    pseudo = pseudo_sum(packet[12:20], TCP, len(packet) - ihl)
    return transport_valid(pseudo, memoryview(packet)[ihl:])
