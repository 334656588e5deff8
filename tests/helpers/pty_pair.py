"""Two ptys joined back to back by socat: a serial line with flow control (a full receiver
holds the sender back instead of losing bytes, unlike the lab's UART cable, which models a
line without flow control). Skips the test when socat is missing."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest


@contextlib.contextmanager
def socat_ptys(timeout: float = 5.0) -> Iterator[tuple[str, str]]:
    """Yield the two slave paths; stop socat and remove them on exit."""
    if shutil.which("socat") is None:
        pytest.skip("socat (Debian package socat) is not installed")
    with tempfile.TemporaryDirectory(prefix="lb-ptys-") as directory:
        path_a, path_b = os.path.join(directory, "ttyA"), os.path.join(directory, "ttyB")
        socat = subprocess.Popen(["socat", f"pty,link={path_a},raw,echo=0",
                                  f"pty,link={path_b},raw,echo=0"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + timeout
            while not (os.path.exists(path_a) and os.path.exists(path_b)):
                if time.monotonic() > deadline or socat.poll() is not None:
                    raise RuntimeError("socat made no pty pair")
                time.sleep(0.01)
            yield path_a, path_b
        finally:
            socat.terminate()
            try:
                socat.wait(5)
            except subprocess.TimeoutExpired:  # seen once under load: SIGTERM not acted on
                socat.kill()
                socat.wait()
