"""The link-aware queue's decisions (docs/queue.md): what waits for a slow link, what goes
first, and what is dropped before it costs airtime. Pure: the caller gives the time.

- A TCP segment that carries sequence space (payload, SYN or FIN) and repeats one still
  queued, or one sent within one link round trip (same flow, sequence, flags and payload), is
  a retransmission the link would carry twice: dropped (QUEUE_RETRANSMIT).
- A pure TCP ACK (the ACK flag alone, no payload, no SACK blocks) still waiting when a newer
  segment of its flow acknowledges more is redundant: dropped (QUEUE_ACK_FILTERED), as
  sch_cake's ack-filter does; so is one that a newer segment carrying data acknowledges as
  much as (the ACK that completes a handshake, followed by the first data), unless it is a
  duplicate ACK (the same acknowledgement as the flow's ACK before it): fast retransmit
  counts those, and a duplicate is never superseded.
- Small packets (pings, ACKs, keystrokes, SYNs) go before bulk; within each of the two tiers
  the flows share by deficit round robin.
- Over its packet or byte limit the queue drops the oldest packet of its largest flow, a bulk
  one before an interactive one (QUEUE_OVERFLOW).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass

from linkbridge.wire.compress.headers import TCP, Headers, option_at, parse
from linkbridge.wire.drops import QUEUE_ACK_FILTERED, QUEUE_OVERFLOW, QUEUE_RETRANSMIT

FIN, SYN, ACK = 0x01, 0x02, 0x10
SACK_OPTION = 5
INTERACTIVE_BYTES = 128  # a packet this small goes before bulk
QUANTUM = 256  # bytes a flow may send per round of the deficit round robin
DEFAULT_PACKETS = 64
DEFAULT_BYTES = 32 * 1024
ACK_MEMORY = 1024  # flows whose latest acknowledgement is remembered (to tell duplicates)
OTHER_FLOW = b""  # what is not TCP, UDP or echo the parser reads shares one flow


def seq_after(a: int, b: int) -> bool:
    """Whether sequence number `a` is later than `b` (modulo 2**32, RFC 793)."""
    return 0 < (a - b) & 0xFFFFFFFF < 0x80000000


@dataclass(eq=False)
class _Entry:
    """One waiting packet: its flow, what makes it a retransmission (None: it carries no
    sequence space), its acknowledgement (None: no ACK flag), whether it is a pure ACK and
    whether that is a duplicate ACK."""

    packet: bytes
    flow: bytes
    identity: tuple[bytes, int, int, bytes] | None
    ack: int | None
    pure_ack: bool
    interactive: bool
    waiting: bool = True
    duplicate: bool = False  # a pure ACK with the acknowledgement of the flow's ACK before it


class _Tier:
    """Flows served by deficit round robin; a dropped entry stays in its flow, not waiting,
    until the round reaches it."""

    def __init__(self) -> None:
        self.flows: dict[bytes, deque[_Entry]] = {}
        self.bytes: dict[bytes, int] = {}  # waiting bytes per flow
        self.deficit: dict[bytes, int] = {}
        self.active: deque[bytes] = deque()

    def add(self, entry: _Entry) -> None:
        flow = self.flows.get(entry.flow)
        if flow is None:
            flow = self.flows[entry.flow] = deque()
            self.bytes[entry.flow] = 0
            self.deficit[entry.flow] = 0
            self.active.append(entry.flow)
        flow.append(entry)
        self.bytes[entry.flow] += len(entry.packet)

    def forget(self, entry: _Entry) -> None:
        """`entry` stops waiting (sent or dropped)."""
        entry.waiting = False
        self.bytes[entry.flow] -= len(entry.packet)

    def pop(self) -> _Entry | None:
        while self.active:
            key = self.active[0]
            flow = self.flows[key]
            while flow and not flow[0].waiting:
                flow.popleft()
            if not flow:
                self.active.popleft()
                del self.flows[key], self.bytes[key], self.deficit[key]
                continue
            head = flow[0]
            if self.deficit[key] < len(head.packet):
                self.deficit[key] += QUANTUM
                self.active.rotate(-1)
                continue
            self.deficit[key] -= len(head.packet)
            flow.popleft()
            self.forget(head)
            return head
        return None

    def largest(self) -> _Entry | None:
        """The oldest waiting packet of the flow with the most bytes waiting."""
        if not self.flows:
            return None
        key = max(self.bytes, key=self.bytes.__getitem__)
        return next((entry for entry in self.flows[key] if entry.waiting), None)


class LinkQueue:
    """Packets waiting for a slow link. `push(packet, now)` queues one and returns the drop
    reasons it caused (of it or of packets it made redundant); `pop(now)` gives the next
    packet to send, or None. `round_trip`: the link's estimated round trip in seconds."""

    def __init__(self, round_trip: float, limit_packets: int = DEFAULT_PACKETS,
                 limit_bytes: int = DEFAULT_BYTES) -> None:
        if limit_packets < 1 or limit_bytes < 1:
            raise ValueError("the queue needs room for a packet")
        self.round_trip = round_trip
        self.limit_packets, self.limit_bytes = limit_packets, limit_bytes
        self.packets = self.bytes = 0
        self._interactive, self._bulk = _Tier(), _Tier()
        self._queued: dict[tuple[bytes, int, int, bytes], _Entry] = {}
        self._sent: OrderedDict[tuple[bytes, int, int, bytes], float] = OrderedDict()
        self._acks: dict[bytes, list[_Entry]] = {}  # waiting pure ACKs per flow
        self._last_ack: OrderedDict[bytes, int] = OrderedDict()  # per flow, the latest ones

    def push(self, packet: bytes, now: float) -> list[str]:
        entry = _entry(packet)
        self._expire(now)
        if entry.identity is not None and (entry.identity in self._queued
                                           or entry.identity in self._sent):
            return [QUEUE_RETRANSMIT]
        drops = self._filter_acks(entry)
        entry.interactive = len(packet) <= INTERACTIVE_BYTES and (
            entry.identity is None or self._bulk.bytes.get(entry.flow, 0) == 0)
        (self._interactive if entry.interactive else self._bulk).add(entry)
        if entry.identity is not None:
            self._queued[entry.identity] = entry
        if entry.pure_ack:
            self._acks.setdefault(entry.flow, []).append(entry)
        self.packets += 1
        self.bytes += len(packet)
        while self.packets > self.limit_packets or self.bytes > self.limit_bytes:
            victim = self._bulk.largest() or self._interactive.largest()
            if victim is None:
                break
            self._drop(victim)
            drops.append(QUEUE_OVERFLOW)
        return drops

    def pop(self, now: float) -> bytes | None:
        entry = self._interactive.pop() or self._bulk.pop()
        if entry is None:
            return None
        self._left(entry)
        if entry.identity is not None:
            self._sent[entry.identity] = now
            self._sent.move_to_end(entry.identity)
        return entry.packet

    def _filter_acks(self, entry: _Entry) -> list[str]:
        """Drop the waiting pure ACKs of `entry`'s flow that it acknowledges past, or as far
        when it carries data and they are no duplicate ACKs."""
        if entry.ack is None:
            return []
        self._note_ack(entry)
        waiting = self._acks.get(entry.flow)
        if not waiting:
            return []
        carries = entry.identity is not None
        superseded = [old for old in waiting if old.waiting and old.ack is not None and (
            seq_after(entry.ack, old.ack)
            or (carries and entry.ack == old.ack and not old.duplicate))]
        for old in superseded:
            self._drop(old)
        return [QUEUE_ACK_FILTERED] * len(superseded)

    def _note_ack(self, entry: _Entry) -> None:
        """Remember `entry`'s acknowledgement as its flow's latest (of the ACK_MEMORY flows
        heard from last); a pure ACK that repeats the one before is a duplicate."""
        assert entry.ack is not None
        entry.duplicate = entry.pure_ack and self._last_ack.get(entry.flow) == entry.ack
        self._last_ack[entry.flow] = entry.ack
        self._last_ack.move_to_end(entry.flow)
        if len(self._last_ack) > ACK_MEMORY:
            self._last_ack.popitem(last=False)

    def _drop(self, entry: _Entry) -> None:
        (self._interactive if entry.interactive else self._bulk).forget(entry)
        self._left(entry)

    def _left(self, entry: _Entry) -> None:
        """Bookkeeping when `entry` leaves the queue (sent or dropped)."""
        self.packets -= 1
        self.bytes -= len(entry.packet)
        if entry.identity is not None:
            self._queued.pop(entry.identity, None)
        if entry.pure_ack:
            waiting = [ack for ack in self._acks[entry.flow] if ack.waiting]
            if waiting:
                self._acks[entry.flow] = waiting
            else:
                del self._acks[entry.flow]

    def _expire(self, now: float) -> None:
        """Forget segments sent more than one round trip ago."""
        while self._sent:
            identity, when = next(iter(self._sent.items()))
            if now - when <= self.round_trip:
                break
            del self._sent[identity]


def _entry(packet: bytes) -> _Entry:
    headers = parse(packet)
    if headers is None:
        return _Entry(packet, OTHER_FLOW, None, None, False, False)
    if headers.proto != TCP:
        return _Entry(packet, headers.key, None, None, False, False)
    return _tcp_entry(packet, headers)


def _tcp_entry(packet: bytes, headers: Headers) -> _Entry:
    payload = packet[headers.ihl + headers.thlen:]
    flags = headers.flags
    identity = ((headers.key, headers.seq, flags, payload)
                if payload or flags & (SYN | FIN) else None)
    ack = headers.ack if flags & ACK else None
    pure = flags == ACK and not payload and option_at(headers.options, SACK_OPTION) < 0
    return _Entry(packet, headers.key, identity, ack, pure, False)
