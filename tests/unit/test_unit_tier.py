"""The unit tier stays quick (README "Tests"): no unit test module imports subprocess (or another
way to start processes or threads) or calls time.sleep; tests/unit/conftest.py refuses the same
at run time. A module that needs them belongs in tests/integration."""

from __future__ import annotations

import ast
from pathlib import Path

from linkbridge.plugin.conformance import LinkConformance
from tests.conftest import PURE_CONFORMANCE

UNIT = Path(__file__).resolve().parent
FORBIDDEN_MODULES = ("subprocess", "multiprocessing", "threading", "pty", "asyncio")
FORBIDDEN_CALLS = {("time", "sleep"), ("os", "fork"), ("os", "system"), ("os", "popen"),
                   ("os", "posix_spawn"), ("os", "forkpty")}
ADVICE = ("tests/unit runs no subprocess, no sleep and no thread that waits on wall time: move "
          "the test to tests/integration, or make it pure with an injected clock")


def problems(source: str, name: str) -> list[str]:
    """`name:line: what` for every forbidden import or call in one module's source."""
    found = []
    for node in ast.walk(ast.parse(source, name)):
        where = f"{name}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [f"{where}: imports {alias.name}" for alias in node.names
                      if alias.name.split(".")[0] in FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            top = node.module.split(".")[0]
            if top in FORBIDDEN_MODULES:
                found.append(f"{where}: imports from {node.module}")
            found += [f"{where}: imports {top}.{alias.name}" for alias in node.names
                      if (top, alias.name) in FORBIDDEN_CALLS]
        elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
              and (node.value.id, node.attr) in FORBIDDEN_CALLS):
            found.append(f"{where}: uses {node.value.id}.{node.attr}")
    return found


def test_no_unit_test_starts_processes_or_sleeps() -> None:
    found = [problem for path in sorted(UNIT.rglob("*.py")) if path.name != "conftest.py"
             for problem in problems(path.read_text(), str(path.relative_to(UNIT.parents[1])))]
    assert not found, f"{ADVICE}:\n" + "\n".join(found)


def test_the_check_sees_what_it_forbids() -> None:
    source = ("import subprocess\nimport time\nfrom os import fork\n\n"
              "def test_x():\n    time.sleep(1)\n")
    assert problems(source, "tests/unit/test_x.py") == [
        "tests/unit/test_x.py:1: imports subprocess",
        "tests/unit/test_x.py:3: imports os.fork",
        "tests/unit/test_x.py:6: uses time.sleep",
    ]


def test_the_quick_loops_conformance_checks_exist() -> None:
    """tests/conftest.py marks these conformance checks `quick` by name: a renamed check must be
    renamed there too."""
    missing = [name for name in PURE_CONFORMANCE if not callable(getattr(LinkConformance, name,
                                                                          None))]
    assert not missing, f"LinkConformance has no {missing}: update PURE_CONFORMANCE"
