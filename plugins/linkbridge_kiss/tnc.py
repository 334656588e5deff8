"""What the link tells a TNC when it (re)connects, without I/O: the init string and the KISS
parameters of the URL, as bytes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from linkbridge.plugin.codecs import kiss

TIME_UNIT = 0.01  # TXDELAY, SLOTTIME and TXTAIL count 10 ms steps
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|[rn\\])")


def init_string(text: str) -> bytes:
    """Option parser: an init string with \\r, \\n, \\\\ and \\xHH escapes, as bytes."""
    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        return {"r": "\r", "n": "\n", "\\": "\\"}.get(code) or chr(int(code[1:], 16))

    if not text:
        raise ValueError("expected the text to send, e.g. KISS ON\\r")
    return _ESCAPE.sub(replace, text).encode("latin-1")


def hex_bytes(text: str) -> bytes:
    """Option parser: bytes as hex digits (`0a1b`)."""
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ValueError("expected bytes as hex digits, e.g. 0a1b") from None


def parameter_frames(config: Mapping[str, Any], port: int) -> bytes:
    """The KISS command frames for the parameters set in `config`, in command order; nothing
    for those left unset."""
    values = {
        kiss.TXDELAY: _steps(config.get("txdelay")),
        kiss.PERSISTENCE: None if config.get("persist") is None else bytes([config["persist"]]),
        kiss.SLOTTIME: _steps(config.get("slottime")),
        kiss.TXTAIL: _steps(config.get("txtail")),
        kiss.FULLDUPLEX: None if config.get("fullduplex") is None
        else bytes([int(config["fullduplex"])]),
        kiss.SETHARDWARE: config.get("sethardware"),
    }
    return b"".join(kiss.encode_command(command, value, port)
                    for command, value in values.items() if value is not None)


def _steps(seconds: float | None) -> bytes | None:
    """A duration as one byte of the TNC's 10 ms steps (0..255), or None when unset."""
    return None if seconds is None else bytes([max(0, min(255, round(seconds / TIME_UNIT)))])
