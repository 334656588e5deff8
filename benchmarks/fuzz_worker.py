"""One fuzz target under atheris (libFuzzer), in a process of its own: libFuzzer ends the process
when its budget is spent or at the first failure, so `python -m benchmarks fuzz` starts one of
these per target.

    python -m benchmarks.fuzz_worker TARGET [libFuzzer options] [CORPUS_DIR...]
    python -m benchmarks.fuzz_worker TARGET FILE     # run one input again (a failure's)

The code of the modules the target covers, and the harnesses', is instrumented for coverage
after the target is imported and its harness built.
"""

from __future__ import annotations

import gc
import logging
import sys
import types
from collections.abc import Sequence

HARNESSES = "benchmarks.fuzz_"


def covered(module: str, covers: Sequence[str]) -> bool:
    """Whether `module` is one of `covers`, inside one of them, or a harness module."""
    return module.startswith(HARNESSES) or any(
        module == name or module.startswith(name + ".") for name in covers)


def instrument(instrument_func: object, covers: Sequence[str]) -> int:
    """Instrument every function loaded so far of the `covers` modules; their number."""
    functions = [item for item in gc.get_objects() if isinstance(item, types.FunctionType)
                 and covered(str(item.__module__), covers)]
    for function in functions:
        instrument_func(function)  # type: ignore[operator]
    return len(functions)


def main(argv: Sequence[str]) -> int:
    import atheris  # only here: the rest of benchmarks runs without it

    from benchmarks.fuzz import target_named

    name, *options = argv
    target = target_named(name)
    harness = target.harness()
    logging.disable(logging.CRITICAL)  # the sim medium logs refused datagrams
    instrument(atheris.instrument_func, target.covers)
    atheris.Setup([sys.argv[0], *options], harness)
    atheris.Fuzz()
    return 0  # not reached: libFuzzer exits the process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
