"""The built-in serial: link passes the plugin conformance suite over a pty pair with flow
control (socat), and its lab pair over the lab's paced pty cable."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import ClassVar

from linkbridge.lab.uart import cable_paths
from linkbridge.plugin.conformance import LinkConformance
from linkbridge.plugin.lab import LabSides
from tests.helpers.pty_pair import socat_ptys


class TestSerialConformance(LinkConformance):
    scheme = "serial"
    bad_options: ClassVar[dict[str, str]] = {"baud": "fast", "parity": "X", "mtu": "10"}
    max_payload = 1006  # the link's default MTU

    @contextlib.contextmanager
    def pair(self) -> Iterator[tuple[str, str]]:
        with socat_ptys() as (path_a, path_b):
            yield f"serial:{path_a}", f"serial:{path_b}"

    @contextlib.contextmanager
    def unopenable(self) -> Iterator[str | None]:
        yield "serial:/dev/no-such-tty"

    @contextlib.contextmanager
    def lab_sides(self) -> Iterator[LabSides]:
        yield LabSides("lbconf-a", "lbconf-b", "198.18.0.1", "198.18.0.2", cable_paths)
