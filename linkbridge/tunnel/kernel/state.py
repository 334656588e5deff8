"""Records of kernel tunnels, which outlive the process that set them up.

One JSON file per tunnel under /run/linkbridge/fou/net<INODE>/, where INODE identifies the
network namespace (device names are per namespace, /run is not), so `linkbridge down` finds
what `up --backend fou` made in the same namespace, in any order.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from linkbridge.errors import TunnelError

RUN_DIR = Path("/run/linkbridge/fou")


@dataclass(frozen=True)
class KernelTunnelState:
    """A kernel tunnel as set up: what `down` needs to remove it."""

    name: str
    rx: int
    tx: int
    host: str
    mtu: int
    remotes: tuple[str, ...]
    addresses: tuple[str, ...]

    @classmethod
    def from_json(cls, text: str) -> KernelTunnelState:
        data = json.loads(text)
        return cls(name=str(data["name"]), rx=int(data["rx"]), tx=int(data["tx"]),
                   host=str(data["host"]), mtu=int(data["mtu"]),
                   remotes=tuple(data["remotes"]), addresses=tuple(data["addresses"]))


def namespace_dir(base: Path = RUN_DIR) -> Path:
    """The state directory of the calling thread's network namespace."""
    return base / f"net{os.stat('/proc/thread-self/ns/net').st_ino}"


class StateStore:
    """Kernel tunnel records in one directory, written atomically."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, name: str) -> Path:
        return self.directory / f"{name}.json"

    def save(self, state: KernelTunnelState) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            temporary = self._path(f".{state.name}")
            temporary.write_text(json.dumps(asdict(state), indent=2) + "\n")
            temporary.replace(self._path(state.name))
        except OSError as exc:
            raise TunnelError(f"cannot record tunnel {state.name} in {self.directory}: "
                              f"{exc.strerror}") from None

    def load(self, name: str) -> KernelTunnelState | None:
        try:
            return KernelTunnelState.from_json(self._path(name).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise TunnelError(f"unreadable state file {self._path(name)}: {exc}") from None

    def all(self) -> list[KernelTunnelState]:
        if not self.directory.is_dir():
            return []
        found = (self.load(path.stem) for path in sorted(self.directory.glob("[!.]*.json")))
        return [state for state in found if state is not None]

    def remove(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # the namespace's last tunnel leaves nothing behind
            self.directory.rmdir()

    def find(self, name: str | None = None, rx: int | None = None) -> KernelTunnelState:
        """The tunnel called `name`, or the one receiving on port `rx`; one-line error if none."""
        known = self.all()
        matches = [s for s in known if (name is None or s.name == name)
                   and (rx is None or s.rx == rx)]
        if len(matches) == 1:
            return matches[0]
        what = f"named {name}" if name else f"with RX port {rx}"
        if not matches:
            listing = ", ".join(f"{s.name} (rx {s.rx})" for s in known) or "none"
            raise TunnelError(f"no kernel tunnel {what} in this network namespace "
                              f"(known: {listing})")
        raise TunnelError(f"several kernel tunnels {what}: "
                          f"{', '.join(s.name for s in matches)}; give the name")
