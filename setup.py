"""Build hook: the manual pages, generated from the real command-line parser at build time,
go into the wheel as share/man/man1/*.1 (pipx links them; `man linkbridge` finds them).

Everything else about the package is in pyproject.toml.
"""

from __future__ import annotations

import sys
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
MAN_DIR = Path("build") / "man"  # relative: setuptools wants data_files inside the source tree


def write_manual_pages() -> list[str]:
    sys.path.insert(0, str(HERE))
    from linkbridge.cli.manual import manual_pages
    from linkbridge.cli.parser import build_parser

    (HERE / MAN_DIR).mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in manual_pages(build_parser()).items():
        (HERE / MAN_DIR / name).write_text(text, encoding="utf-8")
        written.append(str(MAN_DIR / name))
    return sorted(written)


setup(data_files=[("share/man/man1", write_manual_pages())])
