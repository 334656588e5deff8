"""The docs' code that needs more than a unit test: blocks marked `integration` (root, a
network) and the test modules a page ships as `file=test_*.py` blocks, run with pytest (the
conformance test of docs/plugins.md's `fifo:` plugin, against the plugin built from the page)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import missing_privileges
from tests.helpers.doc_blocks import blocks, pages, run_page, run_pytest, save_files


def test_integration_blocks_and_page_test_modules_run(tmp_path: Path) -> None:
    ran = []
    for page in pages():
        directory = tmp_path / page.stem
        directory.mkdir()
        if any(block.integration for block in blocks(page)) and missing_privileges():
            pytest.skip(f"{page.name} has integration blocks: {missing_privileges()}")
        run_page(page, directory, integration=True)
        ran += [block.where for block in blocks(page) if block.integration]
        for module in save_files(page, directory):
            if module.name.startswith("test_"):
                code, output = run_pytest(module)
                assert code == 0, f"{page.name}: {module.name} failed:\n{output[-4000:]}"
                assert " passed" in output and " failed" not in output
                ran.append(f"{page.name}: {module.name}")
    assert any("test_fifo_conformance.py" in what for what in ran), ran
