"""On-air framing of the half-duplex radio (`framing=`, `overhead=`): flags, FCS, AX.25 header
and bit stuffing from a frame's actual bytes, against cases worked by hand. Pure logic."""

from __future__ import annotations

from typing import Any

import pytest
from linkbridge_sim.framing import AX25_UI_HEADER, fcs, hdlc_bits, on_air_bits, stuffed_bits
from linkbridge_sim.options import LINK_OPTIONS, half_duplex_config
from linkbridge_sim.radio import RadioSettings

from linkbridge.plugin import resolve_options


def test_the_fcs_is_crc16_x25() -> None:
    assert fcs(b"123456789") == 0x906E  # the catalogue's check value of CRC-16/X-25
    assert fcs(b"") == 0x0000


@pytest.mark.parametrize("count", range(1, 12))
def test_a_run_of_ones_stuffs_one_bit_per_five(count: int) -> None:
    assert stuffed_bits(b"\xff" * count) == 8 * count + 8 * count // 5
    assert stuffed_bits(b"\x00" * count) == 8 * count


@pytest.mark.parametrize(("data", "bits"), [
    (b"\x1f", 9),  # LSB first: 1 1 1 1 1 | 0 0 0: one zero after the five ones
    (b"\x0f", 8),  # four ones: nothing
    (b"\xf0\x01", 17),  # 0 0 0 0 1 1 1 1, then 1: the run crosses the byte boundary
    (b"\x3f", 9),  # six ones: a zero after the fifth; the sixth starts a new run
    (b"\xff\x03", 18),  # ten ones in a row: two zeros
    (b"\xbe", 9),  # 0 1 1 1 1 1 0 1: five ones inside a byte
])
def test_stuffing_counts_runs_across_bytes(data: bytes, bits: int) -> None:
    assert stuffed_bits(data) == bits


def test_an_hdlc_frame_is_two_flags_around_the_stuffed_body_and_fcs() -> None:
    # "123456789" (0x31..0x39) and its FCS 0x906E, sent 6E 90, never have five ones in a row
    # (every digit's last two bits sent are 0 0): 9 + 2 bytes = 88 bits, flags 16 -> 104.
    assert hdlc_bits(b"123456789") == 104
    # 0xFF bytes: 8 of them are 64 ones, 12 stuffed zeros, then the FCS (computed) and flags
    body = b"\xff" * 8
    assert hdlc_bits(body) == 16 + stuffed_bits(body + fcs(body).to_bytes(2, "little"))
    assert hdlc_bits(body) >= 16 + 64 + 12 + 16


def test_ax25_adds_the_ui_header_written_by_hand() -> None:
    # QST-0 as a command (SSID byte 0b1110_0000), N0CALL-0 last (0b0110_0001), UI, PID IP
    assert bytes.fromhex("a2a6a8404040e0" "9c6086829898" "61" "03cc") == AX25_UI_HEADER
    # a ping's 84 bytes of zeros: header and zeros stuff nothing, nor does this FCS (0xC479,
    # sent 79 C4: at most four ones in a row): (16 + 84 + 2) * 8 + 16 flag bits
    assert fcs(AX25_UI_HEADER + bytes(84)) == 0xC479
    assert on_air_bits(bytes(84), "ax25") == 832
    assert on_air_bits(bytes(84), "hdlc") == 832 - 16 * 8
    assert on_air_bits(bytes(84), "none") == 84 * 8
    with pytest.raises(ValueError, match="unknown framing"):
        on_air_bits(b"", "x25")


def test_the_radio_times_each_frame_from_its_bytes() -> None:
    radio = RadioSettings(rate=1200.0, framing="ax25")
    assert radio.frame_airtime(bytes(84)) == pytest.approx(832 / 1200)
    ones = radio.frame_airtime(b"\xff" * 84)
    assert ones == pytest.approx(on_air_bits(b"\xff" * 84, "ax25") / 1200)
    assert ones > radio.frame_airtime(bytes(84)) + 134 / 1200  # 672 ones stuff 134 bits
    assert radio.radio().data_time(b"\xff" * 84) == ones
    assert radio.airtime(84) == pytest.approx(832 / 1200)  # the figures: a frame of zeros


def configure(**raw: str) -> RadioSettings | None:
    values: dict[str, Any] = resolve_options("link sim:", LINK_OPTIONS, raw)
    return half_duplex_config("link sim:", values)[1]


def test_overhead_is_honoured_with_half_duplex() -> None:
    """It was silently ignored: now the radio adds it to every frame's bits on the air."""
    radio = configure(duplex="half", rate="1200", overhead="10")
    assert radio is not None and radio.overhead == 10
    assert radio.frame_airtime(bytes(50)) == pytest.approx(60 * 8 / 1200)
    framed = configure(duplex="half", rate="1200", framing="ax25", overhead="-2")
    assert framed is not None
    assert framed.frame_airtime(bytes(84)) == pytest.approx((832 - 16) / 1200)
    assert "framing ax25 overhead -2" in framed.describe()
    assert RadioSettings.from_record(framed.to_record()) == framed
    with pytest.raises(ValueError, match="framing must be one of"):
        RadioSettings.from_record({"rate": 1200, "framing": "x25"})


def test_the_configured_capacity_counts_the_framing_and_the_burst() -> None:
    """256-byte frames in AX.25 at 1200 bit/s: (16 + 256 + 2) * 8 + 16 = 2208 bits, 1.84 s;
    one per key-up of 300 ms + 100 ms tail, or 64 after one."""
    one = RadioSettings(rate=1200.0, txdelay=0.3, txtail=0.1, framing="ax25")
    assert one.airtime(256) == pytest.approx(2208 / 1200)
    assert one.capacity(256) == pytest.approx(2048 / (0.4 + 1.84))
    many = RadioSettings(rate=1200.0, txdelay=0.3, txtail=0.1, framing="ax25", burst=64)
    assert many.capacity(256) == pytest.approx(64 * 2048 / (0.4 + 64 * 1.84))
