"""Every public hook is documented in docs/plugins.md, with its parameters."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from linkbridge.plugin import hookspecs

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def hook_functions() -> dict[str, object]:
    return {name: func for name, func in vars(hookspecs).items()
            if callable(func) and hasattr(func, f"{hookspecs.PROJECT}_spec")}


def documented_sections() -> dict[str, str]:
    """Section text under each `#### \\`linkbridge_...\\`` heading of the plugin guide."""
    parts = re.split(r"^#{2,4} `(linkbridge_\w+)`\s*$", DOC.read_text(), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_hooks_exist() -> None:
    assert len(hook_functions()) >= 4


@pytest.mark.parametrize("name", sorted(hook_functions()))
def test_hook_is_documented_with_its_parameters(name: str) -> None:
    sections = documented_sections()
    assert name in sections, f"hook {name} has no section in {DOC.name}"
    func = hook_functions()[name]
    assert inspect.getdoc(func), f"hook {name} has no docstring"
    for parameter in inspect.signature(func).parameters:  # type: ignore[arg-type]
        assert f"`{parameter}`" in sections[name] or f"{parameter}:" in sections[name], (
            f"parameter {parameter!r} of {name} is not described in {DOC.name}"
        )


def test_no_documented_hook_is_missing_from_hookspecs() -> None:
    assert set(documented_sections()) <= set(hook_functions())
