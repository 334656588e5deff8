"""Command hooks (ops/hooks.py): no command, no run; hooks only from config files nobody else can
write (tests/integration/test_hooks.py runs them through /bin/sh)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from linkbridge.errors import ConfigError
from linkbridge.ops.hooks import Hooks, check_hook_source
from linkbridge.plugin.tunnel_info import TunnelInfo

INFO = TunnelInfo(device="lb7", mtu=1400, addresses=("198.19.0.1/24", "fd00::1/64"),
                  routes=("198.19.1.0/24",), link="udp:198.18.0.2:5555")


def test_no_command_no_run() -> None:
    assert Hooks({"up": ""}).run("up", INFO, "started") is None
    assert Hooks({}).run("down", INFO, "stopped") is None


def test_config_writable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tunnels.toml"
    path.write_text("")
    path.chmod(0o600)
    check_hook_source(str(path))
    path.chmod(0o620)
    with pytest.raises(ConfigError, match=r"hooks refused: the file is writable by group or "
                                          r"others \(chmod go-w "):
        check_hook_source(str(path))
    path.chmod(0o602)
    with pytest.raises(ConfigError, match="writable by group or others"):
        check_hook_source(str(path))


def test_config_of_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give the file to another user")
    path = tmp_path / "tunnels.toml"
    path.write_text("")
    path.chmod(0o644)
    os.chown(path, 65534, 65534)
    with pytest.raises(ConfigError, match="belongs to uid 65534, not to root or to this user"):
        check_hook_source(str(path))
