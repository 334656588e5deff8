"""Profiles every thread a Python process starts, for `python -m benchmarks syscalls`: with this
directory on PYTHONPATH and LINKBRIDGE_BENCH_PROFILE naming a directory, each thread started
after start-up runs under its own cProfile.Profile, and at exit each is dumped there as
PID-N-THREADNAME.prof (pstats format). Nothing happens without the variable."""

from __future__ import annotations

import atexit
import cProfile
import os
import sys
import threading

_OUT = os.environ.get("LINKBRIDGE_BENCH_PROFILE")


def _install(out: str) -> None:
    profiles: list[tuple[str, cProfile.Profile]] = []

    def start(*_args: object) -> None:
        sys.setprofile(None)  # the profiler below takes this thread's hook
        profile = cProfile.Profile()
        profiles.append((threading.current_thread().name, profile))
        profile.enable()

    def dump() -> None:
        for number, (name, profile) in enumerate(profiles):
            profile.dump_stats(os.path.join(out, f"{os.getpid()}-{number}-{name}.prof"))

    threading.setprofile(start)
    atexit.register(dump)


if _OUT:
    _install(_OUT)
