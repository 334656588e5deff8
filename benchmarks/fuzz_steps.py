"""How a fuzz input becomes several frames, and the checks every fuzz target shares.

Most decoders keep state across frames (reassembly, compression contexts, sessions, a byte
stream's partial frame), so a target reads one input as a list of steps: each step is an op
byte (what to do: feed the frame as it is, seal it first, let time pass, ...), a 2-byte
big-endian length and that many bytes; the last step takes what is left. `join()` writes the
seed corpora in the same form, from frames the project's own encoders build.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable

Step = tuple[int, bytes]
STEP_HEADER = 3  # op, length


class Failure(AssertionError):
    """An outcome of a decoder that its fuzz target does not allow."""


def expect(condition: bool, what: str) -> None:
    """Raise Failure(`what`) unless `condition` holds."""
    if not condition:
        raise Failure(what)


def split(data: bytes) -> list[Step]:
    """The steps of an input: (op, frame) for each."""
    steps = []
    at = 0
    while at < len(data):
        size = int.from_bytes(data[at + 1:at + STEP_HEADER], "big")
        steps.append((data[at], data[at + STEP_HEADER:at + STEP_HEADER + size]))
        at += STEP_HEADER + size
    return steps


def join(steps: Iterable[Step]) -> bytes:
    """The input that split() reads back as `steps`."""
    return b"".join(bytes((op,)) + len(frame).to_bytes(2, "big") + frame for op, frame in steps)


def chunks(stream: bytes, sizes: Iterable[int]) -> list[bytes]:
    """`stream` cut into pieces of the given sizes (cycled; the last piece takes the rest)."""
    pieces: list[bytes] = []
    sizes = list(sizes)
    at = 0
    while at < len(stream):
        size = sizes[len(pieces) % len(sizes)]
        pieces.append(stream[at:at + size])
        at += size
    return pieces


def counted(reasons: Collection[str], seen: list[str] | None = None) -> Callable[[str], None]:
    """A `drop` callback that allows only declared reasons (and appends each to `seen`)."""

    def drop(reason: str) -> None:
        expect(reason in reasons, f"a drop counted under the undeclared reason {reason!r}")
        if seen is not None:
            seen.append(reason)

    return drop
