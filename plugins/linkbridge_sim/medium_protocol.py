"""The datagrams between half-duplex stations and the simulated medium (docs/sim.md). Pure.

Every datagram starts with one ASCII byte saying what it is:
- `J` + JSON `{"name": ..., "radio": {...}}` station -> medium: join (or re-configure);
- `A` + JSON `{"station": "HOST:PORT"}` medium -> station: joined;
- `F` + frame, both ways: a frame to send / a frame received over the air;
- `L` + frame station -> medium: a frame the sender's loss model lost: it takes its airtime
  (and can collide) but nobody receives it;
- `S` (to the medium) asks for its counters, `S` + JSON (from it) answers;
- `E` + UTF-8 text medium -> station: a request it refused (one line).
"""

from __future__ import annotations

import json
from typing import Any

DEFAULT_PORT = 47200  # where a medium listens unless told otherwise (the lab's too)
JOIN, JOINED, FRAME, STATS, ERROR, LOST = b"J", b"A", b"F", b"S", b"E", b"L"


def encode(kind: bytes, body: Any = None) -> bytes:
    """A control datagram with a JSON body (or none)."""
    return kind if body is None else kind + json.dumps(body, sort_keys=True).encode()


def decode_json(datagram: bytes) -> Any:
    """The JSON body of a control datagram; ValueError when it is not JSON."""
    try:
        return json.loads(datagram[1:].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("body is not JSON") from None
