"""The fuzz targets of `python -m benchmarks fuzz`: one per decoder that bytes from a link reach.

Each target drives one decoder (or a decoder chain as a link runs it) with an input read as
steps (fuzz_steps.py), checks what comes out, and lets only the outcomes in its `allowed` text
pass: a counted drop under a declared reason, a `Lost` mark, a None, a documented exception.
Anything else (any other exception, or a check that fails) is a failure that the fuzzer
reports with the input that caused it. Seeds are valid frames built with the project's own
encoders. The encrypt layer's two targets are in fuzz_secure.py.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass

from linkbridge_kiss import arp, payload
from linkbridge_kiss.ax25 import Callsign, parse_ui, ui_frame
from linkbridge_sim.lora import LoraModulation
from linkbridge_sim.medium import Medium
from linkbridge_sim.medium_protocol import ERROR, FRAME, JOIN, JOINED, STATS, encode
from linkbridge_sim.radio import RadioSettings

from benchmarks.fuzz_steps import Step, chunks, counted, expect, join, split
from linkbridge.framing import crc16, kiss, slip
from linkbridge.framing.events import Lost
from linkbridge.framing.length_prefix import FramingError, LengthDecoder
from linkbridge.framing.length_prefix import encode as length_encode
from linkbridge.wire import drops, frames
from linkbridge.wire.compress.lbhc import Compressor, Decompressor
from linkbridge.wire.compress.vj import VjCompressor, VjDecompressor
from linkbridge.wire.fragment import Fragmenter, Reassembler, is_fragment
from linkbridge.wire.offload import (
    GSO_TCPV4,
    NEEDS_CSUM,
    ChunkReassembler,
    VnetHeader,
    chunk_frames,
    hello_frame,
    parse_hello,
    whole_run,
)
from linkbridge.wire.packet import drop_reason, packet_problem
from tests.helpers.ip_packets import echo, tcp, udp

Harness = Callable[[bytes], None]
LARGEST_FRAME = 65527  # the longest datagram a link can hand up (a UDP payload over IPv6)
COMPRESS_REASONS = {reason for reason in drops.REASONS if reason.startswith("compress_")}


@dataclass(frozen=True)
class Target:
    """One fuzz target: `harness()` builds (once per process) the function that runs one
    input; `seeds()` gives the seed corpus; the code of the `covers` modules (and packages) is
    what the fuzzer instruments and measures its coverage in."""

    name: str
    reaches: str  # the decoders it drives
    allowed: str  # the outcomes it accepts; anything else fails
    harness: Callable[[], Harness]
    seeds: Callable[[], list[bytes]]
    covers: tuple[str, ...]
    max_len: int = 4096


def sample_packets() -> list[bytes]:
    """Well-formed packets of each kind the tunnel carries."""
    return [tcp(4, payload=b"x" * 40), tcp(6, flags=0x18, payload=b"y" * 9), udp(4), udp(6),
            echo(4), echo(6, reply=True)]


def grown(frame: bytes) -> bytes:
    """`frame` padded with zeros to the longest frame a link delivers (length limits)."""
    return frame + bytes(LARGEST_FRAME - len(frame))


def frame_steps(stream: list[bytes], op: int = 0) -> list[Step]:
    return [(op, frame) for frame in stream]


# --- IP packet checks (wire/packet.py) ---------------------------------------------------------

def packet_harness() -> Harness:
    def run(data: bytes) -> None:
        problem = packet_problem(data)
        if problem is None:
            expect(frames.type_nibble(data[0]) in (frames.IPV4, frames.IPV6),
                   "a frame of another version accepted as an IP packet")
        else:
            expect(drop_reason(problem) in drops.REASONS, f"undeclared problem {problem!r}")

    return run


def packet_seeds() -> list[bytes]:
    return [*sample_packets(), frames.KEEPALIVE_FRAME, frames.extension_header(frames.REPAIR)]


# --- fragments (wire/fragment.py) --------------------------------------------------------------

MAX_PENDING, MAX_SIZE = 4, 4000


def fragment_harness() -> Harness:
    """Steps: op even feeds the frame, op odd lets frame[0] / 16 seconds pass."""
    drop = counted(drops.REASONS)

    def run(data: bytes) -> None:
        reassembler = Reassembler(drop, timeout=3.0, max_pending=MAX_PENDING, max_size=MAX_SIZE)
        now = 0.0
        for op, frame in split(data):
            if op % 2:
                now += frame[0] / 16 if frame else 1.0
                reassembler.expire(now)
                continue
            out = reassembler.feed(frame, now)
            if not is_fragment(frame):
                expect(out == frame, "a whole packet changed on its way through")
            elif out is not None:
                expect(len(out) <= MAX_SIZE, f"a {len(out)}-byte packet reassembled")
            expect(reassembler.pending <= MAX_PENDING, "more partial packets than allowed")

    return run


def fragment_seeds() -> list[bytes]:
    seeds = []
    for size, packet in ((5, udp(4, payload=b"a" * 30)), (40, tcp(6, payload=b"b" * 300)),
                         (576, echo(4, payload=bytes(1400)))):
        pieces = Fragmenter(size, counted(drops.REASONS), first_id=size).split(packet)
        seeds += [join(frame_steps(pieces)), join(frame_steps(pieces[::-1])),
                  join([*frame_steps(pieces[:1]), (1, b"\x40"), *frame_steps(pieces)])]
    return seeds


# --- header compression (wire/compress/) -------------------------------------------------------

def check_rebuilt(frame: bytes, packet: bytes | None, owned: bool) -> None:
    """A decompressor's answer: a frame of its own types gives a well-formed packet or None,
    any other frame passes unchanged."""
    if not owned:
        expect(packet == frame, "a frame of another type changed by the decompressor")
    elif packet is not None:
        expect(packet_problem(packet) is None,
               f"a rebuilt packet that is no well-formed IP packet ({packet_problem(packet)})")


def vj_owns(frame: bytes) -> bool:
    return bool(frame) and (frame[0] >= 0x80
                            or frames.type_nibble(frame[0]) == frames.VJ_UNCOMPRESSED_TCP)


def vj_harness() -> Harness:
    """Steps: op % 3 == 0 feeds the frame, 1 reports a lost frame, 2 feeds it grown."""
    drop = counted(COMPRESS_REASONS)

    def run(data: bytes) -> None:
        decompressor = VjDecompressor(drop)
        for op, frame in split(data):
            if op % 3 == 1:
                decompressor.frame_lost()
                continue
            frame = grown(frame) if op % 3 == 2 else frame
            check_rebuilt(frame, decompressor.feed(frame), vj_owns(frame))

    return run


def compressed(compressor: VjCompressor | Compressor, packets: list[bytes]) -> list[bytes]:
    return [compressor.compress(packet) for packet in packets]


def vj_seeds() -> list[bytes]:
    from tests.helpers.packet_streams import VJ_KINDS, packet_stream  # imports hypothesis

    seeds = []
    for seed in range(4):
        stream = compressed(VjCompressor(), packet_stream(seed, 40, VJ_KINDS, 1 + seed % 3))
        seeds += [join(frame_steps(stream)),
                  join([*frame_steps(stream[:5]), (1, b""), *frame_steps(stream[6:])])]
    return seeds


def auto_owns(frame: bytes) -> bool:
    return bool(frame) and frames.type_nibble(frame[0]) in (
        frames.COMPRESSED, frames.UNCOMPRESSED, frames.COMPRESSED_SEQUENTIAL,
        frames.COMPRESSED_SEQUENTIAL_ACK)


def auto_harness() -> Harness:
    """Steps: op % 4 == 0 feeds the frame, 1 lets 0.3 s pass, 2 feeds it grown, 3 gives it to
    this side's compressor as the peer's feedback (then compresses a packet)."""
    drop = counted(COMPRESS_REASONS)
    packets = sample_packets()

    def run(data: bytes) -> None:
        decompressor, compressor = Decompressor(drop), Compressor()
        compressed(compressor, packets)
        now = 0.0
        for index, (op, frame) in enumerate(split(data)):
            if op % 4 == 1:
                now += 0.3
                continue
            frame = grown(frame) if op % 4 == 2 else frame
            if op % 4 == 3 or decompressor.is_feedback(frame):  # as the datapath does
                compressor.feedback(frame)
                packet = packets[index % len(packets)]
                expect(len(compressor.compress(packet)) <= len(packet), "a frame grew")
                continue
            check_rebuilt(frame, decompressor.feed(frame, now), auto_owns(frame))
            for feedback in decompressor.take_feedback():
                expect(decompressor.is_feedback(feedback) and len(feedback) in (1, 2),
                       "a malformed feedback frame")

    return run


def auto_seeds() -> list[bytes]:
    from tests.helpers.ip_packets import tcp
    from tests.helpers.packet_streams import AUTO_KINDS, packet_stream  # imports hypothesis

    bulk = [tcp(seq=1 + 48 * i, ack=7 + i // 2 * 48, payload=bytes([i]) * 48, ip_id=i,
                flags=0x18 if i % 5 == 4 else 0x10) for i in range(12)]  # sequential frames
    seeds = [join(frame_steps(compressed(Compressor(), bulk)))]
    for seed in range(4):
        compressor = Compressor(first_gen=seed)
        stream = compressed(compressor, packet_stream(seed, 40, AUTO_KINDS, 1 + seed))
        seeds += [join(frame_steps(stream)),
                  join([*frame_steps(stream[1:]), (1, b""), *frame_steps(stream[:1])]),
                  join([(3, stream[0][:2]), *frame_steps(stream)])]
    return seeds


# --- byte-stream framings (framing/) ------------------------------------------------------------

STREAM_SIZES = (64, 576, 1500)  # the largest frame a decoder takes, picked by the first op


def is_packet(frame: bytes) -> bool:
    return packet_problem(frame) is None


def check_marks(items: Collection[bytes | Lost], reasons: Collection[str],
                max_frame: int) -> int:
    """The number of Lost marks among a decoder's `items`, each of a declared reason; every
    frame at most `max_frame` bytes."""
    marks = 0
    for item in items:
        if isinstance(item, Lost):
            expect(item.reason in reasons, f"a Lost mark of undeclared reason {item.reason!r}")
            marks += 1
        else:
            expect(len(item) <= max_frame, f"a {len(item)}-byte frame over {max_frame}")
    return marks


def slip_harness() -> Harness:
    """The steps' frames are chunks of the line; the first op picks the largest frame, the
    CRC trailer (op & 1) and the serial link's first-frame rule (op & 2)."""
    reasons = {*slip.REASONS, *crc16.REASONS}

    def run(data: bytes) -> None:
        steps = split(data)
        mode = steps[0][0] if steps else 0
        max_frame = STREAM_SIZES[mode // 4 % len(STREAM_SIZES)]
        errors: Counter[str] = Counter()
        decoder = slip.SlipDecoder(max_frame, errors, is_packet if mode & 2 else None)
        checked = crc16.CrcChecked(decoder, errors) if mode & 1 else decoder
        marks = 0
        for _op, chunk in steps:
            marks += check_marks(checked.feed(chunk), reasons, max_frame)
            expect(decoder.buffered <= 2 * max_frame, "the decoder outgrew its bound")
        expect(marks == sum(errors.values()), "a frame thrown away without a Lost mark")

    return run


def line_seeds(encode_frame: Callable[[bytes], bytes], modes: range) -> list[bytes]:
    """Line streams of packets framed by `encode_frame`, with noise between, in chunks."""
    stream = b"".join(encode_frame(packet) + b"\x55\xdb" for packet in sample_packets())
    return [join([(mode, piece) for piece in chunks(stream, (mode * 37 % 300 + 1, 2048))])
            for mode in modes]


def slip_seeds() -> list[bytes]:
    return (line_seeds(slip.encode, range(0, 12, 2))
            + line_seeds(lambda packet: slip.encode(crc16.append_crc(packet)), range(1, 12, 2)))


def cslip_harness() -> Harness:
    """SLIP then VJ, as the serial link runs with --compress vj: a Lost mark tells the
    decompressor (frame_lost); the steps' frames are chunks of the line."""
    drop = counted(COMPRESS_REASONS)

    def run(data: bytes) -> None:
        decoder = slip.SlipDecoder(1500, first_frame=is_packet)
        decompressor = VjDecompressor(drop)
        for _op, chunk in split(data):
            for item in decoder.feed(chunk):
                if isinstance(item, Lost):
                    decompressor.frame_lost()
                else:
                    check_rebuilt(item, decompressor.feed(item), vj_owns(item))

    return run


def cslip_seeds() -> list[bytes]:
    from tests.helpers.packet_streams import VJ_KINDS, packet_stream  # imports hypothesis

    stream = compressed(VjCompressor(), packet_stream(3, 40, VJ_KINDS, 2))
    line = b"".join(slip.encode(frame) for frame in stream)
    return [join([(0, piece) for piece in chunks(line, sizes)]) for sizes in ((4096,), (1, 700))]


def length_harness() -> Harness:
    """The steps' frames are chunks of the stream; FramingError (the stream is out of step)
    resets it, as a stream link reconnects."""

    def run(data: bytes) -> None:
        steps = split(data)
        max_frame = STREAM_SIZES[(steps[0][0] if steps else 0) % len(STREAM_SIZES)]
        decoder = LengthDecoder(max_frame)
        for _op, chunk in steps:
            try:
                check_marks(decoder.feed(chunk), (), max_frame)
            except FramingError:
                decoder = LengthDecoder(max_frame)
            expect(decoder.buffered <= max_frame + 1, "the decoder outgrew its bound")

    return run


def kiss_harness() -> Harness:
    """The steps' frames are chunks of the line; the first op picks the TNC port (low
    nibble) and the largest payload."""

    def run(data: bytes) -> None:
        steps = split(data)
        mode = steps[0][0] if steps else 0
        max_data = STREAM_SIZES[(mode >> 4) % len(STREAM_SIZES)]
        decoder = kiss.KissDecoder(max_data, mode & kiss.MAX_PORT)
        for _op, chunk in steps:
            check_marks(decoder.feed(chunk), kiss.REASONS, max_data)
            expect(decoder.buffered <= 2 * (max_data + 3), "the decoder outgrew its bound")
        expect(set(decoder.errors) <= kiss.REASONS.keys(), "an undeclared error counted")

    return run


def kiss_seeds() -> list[bytes]:
    framings = (kiss.encode_data, kiss.smack_frame, kiss.flex_frame)
    return [seed for index, framing in enumerate(framings)
            for seed in line_seeds(framing, range(index * 16, index * 16 + 48, 16))]


# --- KISS payloads: AX.25, ARP, Ethernet (plugins/linkbridge_kiss) ------------------------------

CALL, PEER = Callsign.parse("N0CALL-1"), Callsign.parse("N0CALL-2")
MAC, PEER_MAC = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
PAYLOAD_REASONS = {*payload.REASONS, drops.MALFORMED_FRAME}


def payload_modes() -> list[payload.PayloadMode]:
    """Every payload mode, those that answer ARP both for any address and for a network."""
    networks = arp.AddressSet([ipaddress.IPv4Network("198.18.0.0/15")])
    return [payload.RawMode(), payload.TunHeaderMode(),
            payload.EthernetMode(MAC, arp.AddressSet(None)), payload.EthernetMode(MAC, networks),
            payload.Ax25Mode(CALL, PEER, arp.AddressSet(None)),
            payload.Ax25Mode(CALL, PEER, networks)]


def payload_harness() -> Harness:
    """Each step's frame is a KISS payload for the mode op % 6 (payload_modes())."""

    def run(data: bytes) -> None:
        modes = payload_modes()
        for op, frame in split(data):
            mode = modes[op % len(modes)]
            received = mode.unwrap(frame)
            answers = [received.packet, received.reply, received.drop]
            expect(sum(answer is not None for answer in answers) == 1,
                   f"a frame amounts to {received}, not one thing")
            if received.drop is not None:
                expect(received.drop in PAYLOAD_REASONS, f"undeclared drop {received.drop!r}")
            if received.reply is not None and isinstance(mode, payload.Ax25Mode):
                expect(not isinstance(parse_ui(received.reply), str), "an ARP reply no UI frame")

    return run


def payload_seeds() -> list[bytes]:
    modes = payload_modes()
    ax25_arp = arp.request(arp.HARDWARE_AX25, arp.PROTOCOL_AX25_IP, PEER.encode(),
                           "198.18.0.2", "198.18.0.1")
    ether_arp = arp.request(arp.HARDWARE_ETHERNET, arp.PROTOCOL_IPV4, PEER_MAC, "198.18.0.2",
                            "198.18.0.1")
    steps = [(op, mode.wrap(packet)) for op, mode in enumerate(modes)
             for packet in sample_packets()[:3]]
    steps += [(4, ui_frame(Callsign("QST"), PEER, 0xCD, ax25_arp)),
              (2, payload.BROADCAST_MAC + PEER_MAC + b"\x08\x06" + ether_arp),
              (4, payload.Ax25Mode(PEER, CALL, arp.AddressSet(None)).beacon())]
    return [join(steps[at:at + 4]) for at in range(0, len(steps), 4)]


# --- offload chunks (wire/offload.py) ----------------------------------------------------------

OFFLOAD_HEADER = VnetHeader(NEEDS_CSUM, GSO_TCPV4, 52, 1448, 20, 16)


def check_delivered(result: object) -> None:
    """A reassembler's answer: None, a declared drop reason, or a (header, packet) that fits."""
    if result is None:
        return
    if isinstance(result, str):
        expect(result in drops.REASONS, f"undeclared drop {result!r}")
        return
    expect(isinstance(result, tuple), f"a reassembler answered {result!r}")
    header, packet = result  # type: ignore[misc]
    expect(header.problem(len(packet)) is None and packet_problem(packet) is None,
           "a rebuilt super-packet that does not fit its header")


def offload_harness() -> Harness:
    """Steps: op % 3 == 0 feeds a chunk, 1 feeds it and keeps it for a whole run, 2 reads it
    as a hello; the kept chunks then go through whole_run()."""

    def run(data: bytes) -> None:
        reassembler = ChunkReassembler(pending=4)
        run_frames = []
        for op, frame in split(data):
            if op % 3 == 2:
                hello = parse_hello(frame)
                expect(hello is None or 0 <= hello[0] <= 0xFF, "a hello of impossible bits")
                continue
            check_delivered(reassembler.feed(frame))
            expect(reassembler.take_evicted() in (0, 1), "several packets evicted by one chunk")
            if op % 3 == 1:
                run_frames.append(frame)
        if run_frames:
            check_delivered(whole_run(run_frames))

    return run


def offload_seeds() -> list[bytes]:
    packet = tcp(4, payload=bytes(range(256)) * 12)
    pieces = chunk_frames(OFFLOAD_HEADER, packet, 576, 9)
    single = chunk_frames(VnetHeader(), udp(6), 576, 3)
    return [join(frame_steps(pieces, 1)), join(frame_steps(pieces[::-1])),
            join([*frame_steps(single), (2, hello_frame(3, False)), (2, hello_frame(7, True))])]


# --- the sim: medium's protocol (plugins/linkbridge_sim/medium.py) -----------------------------

STATIONS = [("198.18.0.1", 4001), ("198.18.0.2", 4002), ("198.18.0.3", 4003)]
REPLIES = (JOINED, ERROR, STATS, FRAME)
ODD_VALUES = (None, True, False, 0, 1, -1, 7, 255, 256, 2**63, 10**400, 0.5, -0.5, 5e-324, 1e-300,
              1e300, 125000.0, "1", [], {})


class RecordingSocket:
    """What the medium sends to, kept and checked: every datagram a reply it documents."""

    def __init__(self) -> None:
        self.sent = 0

    def sendto(self, data: bytes, address: tuple[str, int]) -> None:
        expect(isinstance(data, bytes) and data[:1] in REPLIES, f"the medium sent {data[:20]!r}")
        self.sent += 1


def join_record(data: bytes) -> bytes:
    """A join datagram whose radio fields (LoRa's too) are odd values picked by `data`."""
    picks = iter(data)

    def pick() -> int:
        return next(picks, 0)

    def fields_of(cls: type) -> dict[str, object]:
        return {field.name: ODD_VALUES[pick() % len(ODD_VALUES)]
                for field in dataclasses.fields(cls) if pick() & 1}

    radio = fields_of(RadioSettings)
    if pick() & 1:
        radio["lora"] = fields_of(LoraModulation)
    return encode(JOIN, {"name": "station" if pick() & 1 else ODD_VALUES[pick() % len(ODD_VALUES)],
                         "radio": radio})


def medium_harness() -> Harness:
    """Steps: the datagram from station op % 3; (op >> 2) % 3 == 1 builds a join from the
    frame's bytes (join_record), 2 lets frame[0] / 8 seconds pass instead."""

    def run(data: bytes) -> None:
        clock = [0.0]
        sock = RecordingSocket()
        medium = Medium(sock, 1, lambda: clock[0])  # type: ignore[arg-type]
        for op, frame in split(data):
            kind = (op >> 2) % 3
            if kind == 2:
                clock[0] += frame[0] / 8 if frame else 1.0
                medium.channel.advance(clock[0])
                continue
            medium.handle(join_record(frame) if kind == 1 else frame, STATIONS[op % 3])
        json.dumps(medium.stats())

    return run


def medium_seeds() -> list[bytes]:
    radio = encode(JOIN, {"name": "a", "radio": RadioSettings(rate=9600.0).to_record()})
    lora = encode(JOIN, {"name": "b", "radio": RadioSettings(lora=LoraModulation()).to_record()})
    frame = FRAME + udp(4)
    return [join([(0, radio), (1, lora), (0, frame), (8, b"\x10"), (1, frame), (0, STATS)]),
            join([(4, bytes(range(40))), (5, bytes(range(1, 80, 2))), (4, frame)])]


DROP = "a counted drop (declared reason)"
COMPRESS = "linkbridge.wire.compress"
FRAMING = "linkbridge.framing"
TARGETS = (
    Target("packet", "IP packet checks (wire/packet.py)",
           "None for a well-formed IPv4/IPv6 packet, else a declared problem", packet_harness,
           packet_seeds, covers=("linkbridge.wire.packet",)),
    Target("fragment", "fragment reassembly (wire/fragment.py)",
           f"a packet, None, or {DROP}; whole packets unchanged; bounded state",
           fragment_harness, fragment_seeds, covers=("linkbridge.wire.fragment",)),
    Target("vj", "VJ decompression (wire/compress/vj.py)",
           f"a well-formed packet, None and {DROP}; other frames unchanged", vj_harness,
           vj_seeds, covers=(COMPRESS,)),
    Target("compress-auto", "`auto` decompression and feedback (wire/compress/lbhc.py)",
           f"a well-formed packet, None and {DROP}; other frames unchanged", auto_harness,
           auto_seeds, covers=(COMPRESS,)),
    Target("slip", "SLIP and its CRC-16 trailer (framing/slip.py, crc16.py)",
           "frames <= the largest, Lost marks of declared reasons, one per error counted",
           slip_harness, slip_seeds, covers=(FRAMING,)),
    Target("cslip", "SLIP then VJ, as serial: with --compress vj",
           "as slip and vj; a Lost mark makes VJ toss", cslip_harness, cslip_seeds,
           covers=(FRAMING, COMPRESS)),
    Target("length-prefix", "length-prefix framing (framing/length_prefix.py)",
           "frames <= the largest; FramingError (the stream is reset)", length_harness,
           lambda: line_seeds(length_encode, range(3)), covers=(FRAMING,)),
    Target("kiss", "KISS, SMACK and FlexNet framing (framing/kiss.py)",
           "payloads <= the largest, Lost marks and errors of declared reasons", kiss_harness,
           kiss_seeds, covers=(FRAMING,)),
    Target("kiss-payload", "AX.25 UI frames, ARP, Ethernet, TUN headers (linkbridge_kiss)",
           "one of: a packet, an ARP reply, a declared drop", payload_harness, payload_seeds,
           covers=("linkbridge_kiss",)),
    Target("offload", "offload chunks and hellos (wire/offload.py)",
           f"a packet that fits its header, None, or {DROP}", offload_harness, offload_seeds,
           covers=("linkbridge.wire.offload", "linkbridge.wire.packet"), max_len=8192),
    Target("sim-medium", "the sim medium's datagrams (linkbridge_sim/medium.py)",
           "documented replies only (joined, error, stats, frame)", medium_harness,
           medium_seeds, covers=("linkbridge_sim",)),
)
