"""Key pairs for the stations of a test: a private key file each (mode 0600) and its public
key."""

from __future__ import annotations

from pathlib import Path

from linkbridge.ops.keys import new_private_key, public_key_of


def station_keys(directory: Path, names: str) -> list[tuple[str, str]]:
    """For each station (one letter of `names`): its private key file and its public key."""
    made = []
    for name in names:
        private = new_private_key()
        path = directory / f"{name}.key"
        path.write_text(private + "\n")
        path.chmod(0o600)
        made.append((str(path), public_key_of(private)))
    return made
