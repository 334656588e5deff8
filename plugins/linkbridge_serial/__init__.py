"""The `serial:` link: packets as SLIP frames (RFC 1055) over a serial port, through pyserial.

Plain SLIP by default, so any SLIP peer (a kernel `slattach` interface, a microcontroller) can
be the other end; `?crc=1` adds a CRC-16 trailer to every frame so line noise is detected and
dropped instead of delivered. Opening, the write deadline and reconnecting are SerialLine's
(a StreamLink): when the device goes away (a USB adapter pulled out) the link logs it once,
drops what is sent meanwhile (counted as `unplugged`), reopens the port with backoff and carries
on by itself; with `?wait=1` a device that is absent at start is waited for the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any, ClassVar

from linkbridge.plugin import Framing, Link, LinkUrl, Option, boolean, hookimpl, integer
from linkbridge.plugin.codecs import crc16, packet_problem, slip
from linkbridge.plugin.lab import SERIAL_BITS_PER_BYTE, LabDirection
from linkbridge.plugin.serial import SERIAL_OPTIONS, SerialLine, line_write_timeout, url_baud

DEFAULT_MTU = 1006  # RFC 1055's suggested SLIP MTU


class SerialLink(SerialLine):
    """SLIP over a serial port; survives the device disappearing and coming back."""

    scheme = "serial"
    summary = "packets as SLIP frames over a serial port (optional CRC-16 per frame)"
    target_help = "DEVICE (e.g. /dev/ttyUSB0)"
    options = (
        *SERIAL_OPTIONS,
        Option("crc", boolean, False, "append a CRC-16 to every frame; damaged frames are dropped "
                                      "(both ends must agree; plain SLIP peers do not)"),
        Option("mtu", integer(68, 65535), DEFAULT_MTU, "largest packet carried"),
    )
    drop_reasons: ClassVar[Mapping[str, str]] = {**slip.REASONS, **crc16.REASONS}

    def __init__(self, target: str, options: Mapping[str, Any]) -> None:
        super().__init__(target, options)
        self.baud: int = self.config["baud"]
        self.crc: bool = self.config["crc"]
        trailer = crc16.TRAILER if self.crc else 0
        self.write_timeout = line_write_timeout(self.baud, self.config["mtu"] + trailer)
        self.framing = Framing(self._encode, self._decoder, resyncs=True)

    def _encode(self, packet: bytes) -> bytes:
        return slip.encode(crc16.append_crc(packet) if self.crc else packet)

    def _decoder(self, mtu: int, errors: Counter[str]) -> slip.SlipDecoder | crc16.CrcChecked:
        """SLIP frames; with crc=1 each checked and stripped, a damaged one a `Lost` mark."""
        decoder = slip.SlipDecoder(mtu + (crc16.TRAILER if self.crc else 0), errors=errors,
                                   first_frame=self._whole_packet)
        return crc16.CrcChecked(decoder, errors) if self.crc else decoder

    def _whole_packet(self, frame: bytes) -> bool:
        """A peer that frames packets as `packet END` (RFC 1055 allows it) sends its first
        without a leading END: deliver it when it is a whole IP packet (CRC checked first)."""
        packet = crc16.strip_crc(frame) if self.crc else frame
        return packet is not None and packet_problem(packet) is None

    @classmethod
    def lab_configured(cls, url: LinkUrl) -> tuple[LabDirection, LabDirection] | None:
        """The lab cable's rate, both ways: 8 of every 10 line bits (8N1) carry packet bytes;
        each frame adds two ENDs (and a 2-byte CRC with crc=1); escapes are not counted."""
        crc = boolean(url.options.get("crc", "0"))
        direction = LabDirection(rate=url_baud(url) * 8 / SERIAL_BITS_PER_BYTE,
                                 overhead=2 + (crc16.TRAILER if crc else 0))
        return direction, direction


@hookimpl
def linkbridge_register_links() -> list[type[Link]]:
    return [SerialLink]
