"""Every Python block in docs/*.md runs (but those marked `integration`, which need root or a
network: tests/integration/test_docs_code.py runs them); `file=` blocks are saved as modules and
imported. The convention is in docs/architecture.md ("Code in the docs runs")."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.doc_blocks import DOCS, blocks, pages, run_page


@pytest.mark.parametrize("page", pages(), ids=lambda page: page.name)
def test_page_code_runs(page: Path, tmp_path: Path) -> None:
    run_page(page, tmp_path, integration=False)


def test_the_plugin_guide_has_a_whole_plugin_and_its_conformance_test() -> None:
    files = {block.file for block in blocks(DOCS / "plugins.md")}
    assert {"linkbridge_fifo.py", "test_fifo_conformance.py"} <= files


def test_unknown_markers_are_refused(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("text\n\n```python skip\nprint()\n```\n")
    with pytest.raises(ValueError, match="unknown marker 'skip'"):
        blocks(page)


def test_a_broken_block_fails_naming_its_line(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# t\n\n```python\nx = 1\n```\n\n```python\nassert x == 2, 'x'\n```\n")
    with pytest.raises(AssertionError) as info:
        run_page(page, tmp_path, integration=False)
    assert str(info.traceback[-1].path).endswith("page.md")
    assert info.traceback[-1].lineno + 1 == 8  # the page's own line
