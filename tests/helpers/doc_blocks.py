"""The Python blocks of docs/*.md, and running them (tests/unit/test_docs_code.py and
tests/integration/test_docs_code.py; the convention is in docs/architecture.md).

A fenced block whose info string starts with `python` is code. The words after it:
`file=NAME.py` saves the block as a module NAME.py in a directory on sys.path (imported; a
test_*.py module is run with pytest by the integration test); `integration` marks a block that
needs root or a network (run by the integration test only).
A page's other blocks run in order in one namespace, compiled as if they began with
`from __future__ import annotations`.
"""

from __future__ import annotations
import __future__

import contextlib
import io
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import CodeType

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```python([^\n]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
WORDS = re.compile(r"^(integration|file=[A-Za-z_][A-Za-z0-9_]*\.py)$")


@dataclass(frozen=True)
class Block:
    """One fenced Python block: where it is, how it is marked, its code."""

    page: Path
    line: int
    file: str | None
    integration: bool
    code: str

    def compiled(self) -> CodeType:
        """The block compiled with the page's name and line numbers, so that a traceback
        points into the page."""
        shown = self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page
        code: CodeType = compile("\n" * (self.line - 1) + self.code, str(shown), "exec",
                                 flags=__future__.annotations.compiler_flag)
        return code


def blocks(page: Path) -> list[Block]:
    """The Python blocks of `page`, in order; ValueError for a marker this convention lacks."""
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 2  # the block's first line of code
        words = match.group(1).split()
        for word in words:
            if not WORDS.match(word):
                raise ValueError(f"{page.name}:{line - 1}: unknown marker {word!r} after "
                                 "```python (valid: integration, file=NAME.py)")
        file = next((word[5:] for word in words if word.startswith("file=")), None)
        found.append(Block(page, line, file, "integration" in words, match.group(2)))
    return found


def pages() -> list[Path]:
    """The docs pages that hold Python blocks."""
    return [page for page in sorted(DOCS.glob("*.md")) if blocks(page)]


@contextlib.contextmanager
def importable(directory: Path) -> Iterator[None]:
    """`directory` on sys.path; the modules imported from it are forgotten on exit."""
    before = set(sys.modules)
    sys.path.insert(0, str(directory))
    try:
        yield
    finally:
        sys.path.remove(str(directory))
        for name in set(sys.modules) - before:
            module = sys.modules[name]
            if str(getattr(module, "__file__", "") or "").startswith(str(directory)):
                del sys.modules[name]


def save_files(page: Path, directory: Path) -> list[Path]:
    """Write the page's `file=` blocks into `directory`; return their paths."""
    saved = []
    for block in blocks(page):
        if block.file:
            path = directory / block.file
            path.write_text(block.code)
            saved.append(path)
    return saved


def run_page(page: Path, directory: Path, integration: bool) -> None:
    """Run the page's blocks of one tier (its files saved and imported first, so a syntax or
    import error in one fails here too)."""
    saved = save_files(page, directory)
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    with importable(directory):
        for path in saved:
            __import__(path.stem)
        for block in blocks(page):
            if block.file is None and block.integration == integration:
                exec(block.compiled(), namespace)


def run_pytest(test_file: Path, *args: str) -> tuple[int, str]:
    """Run pytest in this process on `test_file` (its directory importable); return the exit
    code and what it printed."""
    output = io.StringIO()
    with importable(test_file.parent), contextlib.redirect_stdout(output):
        code = pytest.main(["-q", "-p", "no:cacheprovider", "-o", "addopts=",
                            "--rootdir", str(test_file.parent), *args, str(test_file)])
    return int(code), output.getvalue()
