"""The example plugin's package metadata installs quietly and offline: an SPDX license string
(the table form makes setuptools >= 77 print screens of deprecation warnings), and a linkbridge
requirement the installed linkbridge satisfies, so pip never looks the name up on an index."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement

PYPROJECT = Path(__file__).resolve().parents[2] / "examples" / "linkbridge-tcp" / "pyproject.toml"


def test_license_is_an_spdx_expression_for_a_setuptools_that_reads_it() -> None:
    meta = tomllib.loads(PYPROJECT.read_text())
    assert meta["project"]["license"] == "MIT"
    assert not any(c.startswith("License ::") for c in meta["project"].get("classifiers", []))
    [setuptools] = [Requirement(r) for r in meta["build-system"]["requires"]
                    if r.startswith("setuptools")]
    assert "76" not in setuptools.specifier and "77" in setuptools.specifier


def test_the_installed_linkbridge_satisfies_the_requirement() -> None:
    meta = tomllib.loads(PYPROJECT.read_text())
    [requirement] = [Requirement(r) for r in meta["project"]["dependencies"]
                     if r.startswith("linkbridge")]
    assert requirement.specifier.contains(version("linkbridge"))
