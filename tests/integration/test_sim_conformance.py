"""The built-in sim: link (unimpaired, over its UDP carrier) passes the plugin conformance
suite, with the same URLs as udp: but for the scheme."""

from __future__ import annotations

from typing import ClassVar

from tests.integration.test_udp_conformance import TestUdpConformance as UdpConformance


class TestSimConformance(UdpConformance):
    scheme = "sim"
    bad_options: ClassVar[dict[str, str]] = {"loss": "150%", "delay": "soon", "mtu": "0"}
