"""The encrypt layer's state directory (`--state-dir`): the newest handshake timestamp
accepted from each peer, kept across restarts so that an initiation recorded before a
restart is refused after it too (docs/security.md, "Restarts").

One file per peer, `<peer public key in hex>.timestamp`, holding the timestamp in hex;
written whole through a temporary file and a rename, so a crash leaves the old or the new one.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from linkbridge.errors import ConfigError

log = logging.getLogger("linkbridge")


class TimestampStore:
    """The newest initiation timestamp accepted from one peer, in `directory`; `owner` (uid,
    gid), when given, is made the directory's owner, so that the process can still write it
    after it drops to that user (--user)."""

    def __init__(self, directory: str, peer_public: bytes,
                 owner: tuple[int, int] | None = None) -> None:
        self.path = Path(directory) / f"{peer_public.hex()}.timestamp"
        self._owner = owner
        self._saved = b""
        self._failed = False

    def load(self) -> bytes:
        """The stored timestamp (b"" when none); ConfigError when the directory cannot hold
        one (it is made, mode 0700, when missing)."""
        directory = self.path.parent
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if self._owner is not None:
                os.chown(directory, *self._owner)
            text = self.path.read_text() if self.path.exists() else ""
            if not os.access(directory, os.W_OK):
                raise PermissionError(f"{directory} is not writable")
            self._saved = bytes.fromhex(text.strip())
        except ValueError:
            raise ConfigError(f"--state-dir: {self.path} does not hold a timestamp: remove it "
                              "(a recorded handshake is then refused only from the next one "
                              "on)") from None
        except OSError as exc:
            raise ConfigError(f"--state-dir {directory}: {exc}") from None
        return self._saved

    def save(self, stamp: bytes) -> None:
        """Store `stamp` if it is new; a failure is logged once and the tunnel goes on."""
        if stamp == self._saved:
            return
        temporary = self.path.with_name(self.path.name + ".new")
        try:
            temporary.write_text(stamp.hex() + "\n")
            os.replace(temporary, self.path)
        except OSError as exc:
            if not self._failed:
                log.warning("cannot keep the handshake timestamp in %s: %s; a handshake "
                            "recorded before a restart would be answered after it", self.path,
                            exc.strerror)
            self._failed = True
            return
        self._saved = stamp
