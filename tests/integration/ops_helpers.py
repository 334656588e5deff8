"""Shared by the operations tests: a private status directory and `linkbridge status` runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from linkbridge.ops.status import RUN_DIR_ENV


@pytest.fixture
def run_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A status directory of this test's own (short path: unix socket names are limited),
    reachable by an unprivileged `--user` so it can remove its socket on exit."""
    top = Path(tempfile.mkdtemp(prefix="lbst-"))
    os.chmod(top, 0o755)
    monkeypatch.setenv(RUN_DIR_ENV, str(top / "run"))
    yield top / "run"
    shutil.rmtree(top, ignore_errors=True)


def status(*args: str, preexec: Callable[[], None] | None = None
           ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "linkbridge", "status", *args],
                          capture_output=True, text=True, timeout=60, preexec_fn=preexec)


def status_json() -> list[dict[str, Any]]:
    done = status("--json")
    assert done.returncode == 0, done.stderr
    documents: list[dict[str, Any]] = json.loads(done.stdout)
    return documents
