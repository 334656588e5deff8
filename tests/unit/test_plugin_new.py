"""`linkbridge plugin new NAME`: the files it writes and the names it refuses, in one line each
(the package at work: tests/integration/test_plugin_new.py)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from linkbridge.cli.main import main
from linkbridge.cli.plugin import plugin_files


def test_the_files_name_the_plugin_everywhere() -> None:
    files = plugin_files("radio")
    assert sorted(files) == ["README.md", "linkbridge_radio/__init__.py",
                             "linkbridge_radio/py.typed", "pyproject.toml",
                             "tests/test_conformance.py"]
    assert all("$" not in text for text in files.values())
    project = tomllib.loads(files["pyproject.toml"])["project"]
    assert project["name"] == "linkbridge-radio"
    assert project["entry-points"] == {"linkbridge": {"radio": "linkbridge_radio"}}
    module = ast.parse(files["linkbridge_radio/__init__.py"])
    assert "RadioLink" in {node.name for node in module.body if isinstance(node, ast.ClassDef)}
    imported = {alias.name for node in ast.walk(module) if isinstance(node, ast.ImportFrom)
                and node.module == "linkbridge.plugin" for alias in node.names}
    assert imported <= {"ConfigError", "DatagramEndpoint", "Link", "LinkError", "Option",
                        "hookimpl", "host_port"}, "the template uses the narrow facade only"
    assert 'scheme = "radio"' in files["tests/test_conformance.py"]


def test_new_writes_the_package(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugin", "new", "radio", "--directory", str(tmp_path)]) == 0
    written = {str(path.relative_to(tmp_path / "linkbridge-radio"))
               for path in (tmp_path / "linkbridge-radio").rglob("*") if path.is_file()}
    assert written == set(plugin_files("radio"))
    assert "pip install -e" in capsys.readouterr().out


@pytest.mark.parametrize(("name", "message"), [
    ("My-Link", "use lowercase letters and digits, starting with a letter"),
    ("my_link", "use lowercase letters and digits"),
    ("9lives", "use lowercase letters and digits"),
    ("udp", "an installed plugin already has the scheme udp:"),
    ("taken", "linkbridge-taken already exists"),
])
def test_a_bad_name_is_refused_in_one_line(name: str, message: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "linkbridge-taken").mkdir()
    assert main(["plugin", "new", name, "--directory", str(tmp_path)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"linkbridge: error: plugin name {name!r}: ") and message in line
    assert sorted(path.name for path in tmp_path.iterdir()) == ["linkbridge-taken"]
