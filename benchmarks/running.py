"""Running a benchmark's measurements with the same checks and one-line errors everywhere."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from typing import TypeVar

from linkbridge.errors import LinkbridgeError

T = TypeVar("T")


def run_measurements(work: Callable[[], T], needs: str) -> tuple[int, T | None]:
    """(exit status, result of `work`): 1 with one line when not root or on an error, 130 on
    Ctrl-C (the lab is removed by then), else 0 and the result."""
    if os.geteuid() != 0:
        print(f"benchmarks: error: needs root ({needs})", file=sys.stderr)
        return 1, None
    try:
        return 0, work()
    except (LinkbridgeError, OSError) as exc:
        print(f"benchmarks: error: {exc}", file=sys.stderr)
        return 1, None
    except KeyboardInterrupt:
        print("benchmarks: interrupted; the lab was removed", file=sys.stderr)
        return 130, None


def verdict_status(lines: Iterable[str]) -> int:
    """The exit status of a benchmark whose printed `lines` carry its verdicts: 1 when any
    target line says MISSED, else 0 (so a script or CI sees a missed target)."""
    return 1 if any("MISSED" in line for line in lines) else 0
