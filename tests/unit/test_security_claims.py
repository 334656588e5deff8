"""docs/security.md's table of claims names, for each claim, tests that exist: a test renamed
or removed fails here, so no claim goes unchecked."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECURITY = ROOT / "docs" / "security.md"
NODE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def claims() -> list[tuple[str, list[tuple[str, str]]]]:
    """The rows of the table under "Claims and their tests": (claim, [(file, test)])."""
    text = SECURITY.read_text().split("## Claims and their tests", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    return [(cells[0].strip(), NODE.findall(cells[1]))
            for cells in (row.strip("|").split(" | ") for row in rows[1:])]


def test_every_claim_names_tests_that_exist() -> None:
    rows = claims()
    assert len(rows) >= 15
    defined: dict[str, set[str]] = {}
    for claim, tests in rows:
        assert tests, f"the claim {claim!r} names no test"
        for file, name in tests:
            if file not in defined:
                assert (ROOT / file).is_file(), f"{claim!r}: no file {file}"
                tree = ast.parse((ROOT / file).read_text())
                defined[file] = {node.name for node in tree.body
                                 if isinstance(node, ast.FunctionDef)}
            assert name in defined[file], f"{claim!r}: no test {name} in {file}"
