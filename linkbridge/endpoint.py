"""What the data path moves packets between: a tunnel device, local UDP ports, or a link."""

from __future__ import annotations

from typing import Protocol

from linkbridge.counters import Counters


class Endpoint(Protocol):
    """A packet source and sink. `receive` blocks at most `timeout` seconds.

    Transient problems (a malformed frame, a refused send) are counted drops in `counters`;
    only a failure that ends the endpoint for good raises LinkbridgeError.
    """

    name: str
    counters: Counters

    def send(self, packet: bytes) -> None: ...

    def receive(self, timeout: float) -> list[bytes]: ...

    def close(self) -> None: ...
