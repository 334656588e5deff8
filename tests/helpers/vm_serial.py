"""Serial line settings that only a real UART keeps (a pty drops byte size and parity): the
serial: link opened on the VM's emulated 16550 UART, then tcgetattr on the same port."""

from __future__ import annotations

import contextlib
import re
import termios
from typing import Any

# (URL query, expected: speed, CSIZE bits, parity enabled, odd parity, two stop bits)
SETTINGS = (
    ("baud=9600&bytesize=7&parity=E&stopbits=2", termios.B9600, termios.CS7, True, False, True),
    ("baud=19200&bytesize=5&parity=O", termios.B19200, termios.CS5, True, True, False),
    ("baud=115200&bytesize=8&parity=N", termios.B115200, termios.CS8, False, False, False),
)


def real_uarts() -> list[str]:
    """/dev/ttySN of the ports with a UART behind them (/proc/tty/driver/serial)."""
    with open("/proc/tty/driver/serial") as listing:
        return [f"/dev/ttyS{match.group(1)}" for match in
                re.finditer(r"^(\d+): uart:(?!unknown)\S+", listing.read(), re.MULTILINE)]


def check_uart_settings(figures: dict[str, Any]) -> None:
    from linkbridge.plugin.registry import LinkRegistry, get_plugin_manager

    ports = real_uarts()
    if not ports:
        raise RuntimeError("the VM has no UART (/proc/tty/driver/serial)")
    device = ports[-1]
    figures["device"] = device
    registry = LinkRegistry(get_plugin_manager())
    with open(device, "rb", buffering=0) as saved_port:  # restore the console's settings
        saved = termios.tcgetattr(saved_port)
        try:
            for query, speed, size, parity, odd, two_stop in SETTINGS:
                link = registry.create_link(f"serial:{device}?{query}")
                link.open()
                try:
                    _i, _o, cflag, _l, ispeed, ospeed, _cc = termios.tcgetattr(saved_port)
                finally:
                    link.close()
                got = {"speed": (ispeed, ospeed), "size": cflag & termios.CSIZE,
                       "parity": bool(cflag & termios.PARENB), "odd": bool(cflag & termios.PARODD),
                       "two_stop": bool(cflag & termios.CSTOPB)}
                figures[query] = got
                want = {"speed": (speed, speed), "size": size, "parity": parity, "odd": odd,
                        "two_stop": two_stop}
                if got != want:
                    raise AssertionError(f"{device} after serial:{device}?{query}: {got}, "
                                         f"expected {want}")
        finally:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(saved_port, termios.TCSANOW, saved)
