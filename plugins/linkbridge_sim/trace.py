"""Trace files: one JSON line per offered packet, after a header line naming the run (and which
packets of a size one dropped); and reading the Mahimahi rate traces of `rate_trace=`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import IO, Any

from linkbridge.plugin import ConfigError
from linkbridge_sim.mahimahi import parse_trace

FORMAT = "linkbridge-sim-trace/1"


class TraceWriter:
    """Appends one line per outcome record to a new trace file."""

    def __init__(self, path: str, seed: int | None, config: str) -> None:
        self.path = path
        try:
            self._file: IO[str] = open(path, "w", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise ConfigError(f"sim: cannot write trace {path!r}: {exc.strerror}") from None
        self.write({"format": FORMAT, "seed": seed, "config": config})

    def write(self, record: Mapping[str, Any]) -> None:
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")

    def close(self) -> None:
        self._file.close()


def read_trace(path: str) -> list[dict[str, Any]]:
    """The per-packet records of a trace file; ConfigError naming the line when malformed."""
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except OSError as exc:
        raise ConfigError(f"sim: cannot read trace {path!r}: {exc.strerror}") from None
    if not lines:
        raise ConfigError(f"sim: {path!r} is not a sim trace (no {FORMAT} header)")
    records = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise ConfigError(f"sim: trace {path!r} line {number}: not JSON") from None
        if not isinstance(record, dict):
            raise ConfigError(f"sim: trace {path!r} line {number}: not a JSON object")
        if number == 1:
            if record.get("format") != FORMAT:
                raise ConfigError(f"sim: {path!r} is not a sim trace (no {FORMAT} header)")
            continue
        records.append(record)
    return records


def losses_of_size(path: str, size: int) -> list[bool]:
    """Whether each packet of `size` bytes a trace file recorded was dropped (lost or any other
    drop), in the order offered: over links that carry the same packets in the same order
    (multi-link duplicate), the n-th packet of a size on one is the n-th on another."""
    return [bool(record.get("lost") or record.get("drops"))
            for record in read_trace(path) if record.get("size") == size]


def read_rate_trace(text: str) -> tuple[int, ...]:
    """The `rate_trace=PATH` option: a Mahimahi trace file's opportunity times (ms)."""
    try:
        with open(text, encoding="ascii", errors="replace") as file:
            return parse_trace(file.read())
    except OSError as exc:
        raise ValueError(f"cannot read {text!r}: {exc.strerror}") from None
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a Mahimahi trace: {exc}") from None
