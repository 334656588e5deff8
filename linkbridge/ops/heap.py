"""Giving freed heap memory back to the system, so a long-running tunnel's RSS stays flat.

Packets come and go as short-lived buffers of many sizes (64 KiB reads shrunk to the packet,
coalesced runs joined for one send); glibc's allocator keeps what they free in its heaps, and
the holes between live blocks make RSS creep up over hours although nothing leaks.
`malloc_trim(0)` returns those free pages. Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

TRIM_INTERVAL = 10.0  # seconds between trims of a running data path


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


MALLOC_TRIM = _malloc_trim()


def release_free_memory() -> None:
    """Hand the allocator's free pages back to the kernel (glibc only)."""
    if MALLOC_TRIM is not None:
        MALLOC_TRIM(0)
