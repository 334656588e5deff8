"""The datagrams between half-duplex stations and the simulated medium (docs/sim.md). Pure.

Every datagram starts with one ASCII byte saying what it is:
- `J` + JSON `{"name": ..., "radio": {...}, "addressed": true, "ready": true}` station ->
  medium: join (or re-configure); `addressed` (optional) makes the station's frames, both
  ways, addressed ones; `ready` (optional) asks for `R` datagrams;
- `A` + JSON `{"station": "HOST:PORT"}` medium -> station: joined;
- `F` + frame, both ways: a frame to send / a frame received over the air;
- `L` + frame station -> medium: a frame the sender's loss model lost: it takes its airtime
  (and can collide) but nobody receives it;
- `S` (to the medium) asks for its counters, `S` + JSON (from it) answers;
- `E` + UTF-8 text medium -> station: a request it refused (one line);
- `R` + JSON `{"offered": n, "held": n, "busy": false}` medium -> station (one that joined
  with `ready`): whenever one of them changes, how many frames the medium has had from it,
  how many of those it still holds (queued, or on the air with their data not yet ended), and
  whether it hears another station's transmission while not sending itself
  (channel.Readiness: the station's link then tells the queue above when it is ready).

An addressed station's frames (`F`, `L`) start with a station name (`address()`): to the
medium the station it is for (empty: every station), from the medium the station it came
from (its name, or the HOST:PORT of a station that joined without `addressed`). The medium
puts them on the air as given, so the address takes airtime, and hands a frame for one
station to that station only. A station that joined without `addressed` sends and gets bare
frames, every frame it hears, as before.
"""

from __future__ import annotations

import json
import re
from typing import Any

DEFAULT_PORT = 47200  # where a medium listens unless told otherwise (the lab's too)
JOIN, JOINED, FRAME, STATS, ERROR, LOST, READY = b"J", b"A", b"F", b"S", b"E", b"L", b"R"
EVERY_STATION = ""  # the address of a frame for all
STATION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}\Z")


def station_name(text: str) -> str:
    """A station's name: 1 to 32 letters, digits, `_`, `.`, `-` (first a letter or digit)."""
    if not STATION_NAME.match(text):
        raise ValueError(f"bad station name {text!r}: 1 to 32 letters, digits, _ . -")
    return text


def address(station: str, frame: bytes) -> bytes:
    """`frame` behind its station: a length byte and the name."""
    name = station.encode()
    return bytes([len(name)]) + name + frame


def unaddress(body: bytes) -> tuple[str, bytes]:
    """The station and the frame of an addressed body; ValueError when it is none."""
    if not body or len(body) < 1 + body[0]:
        raise ValueError("truncated station address")
    try:
        station = body[1:1 + body[0]].decode("ascii")
    except UnicodeDecodeError:
        raise ValueError("station address is not ASCII") from None
    return station, body[1 + body[0]:]


def encode(kind: bytes, body: Any = None) -> bytes:
    """A control datagram with a JSON body (or none)."""
    return kind if body is None else kind + json.dumps(body, sort_keys=True).encode()


def decode_json(datagram: bytes) -> Any:
    """The JSON body of a control datagram; ValueError when it is not JSON."""
    try:
        return json.loads(datagram[1:].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("body is not JSON") from None
