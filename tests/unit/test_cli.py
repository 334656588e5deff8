"""The command line below the commands: options as plain values, the link side planned once for
`up` and `link`, and one plugin manager per run, loaded only by commands that need plugins."""

from __future__ import annotations

from pathlib import Path

import pluggy
import pytest

from linkbridge.cli import main as cli
from linkbridge.cli.installed import InstalledPlugins
from linkbridge.cli.kernel import kernel_spec
from linkbridge.cli.options import UpOptions
from linkbridge.cli.parser import build_parser
from linkbridge.cli.up import plan_up
from linkbridge.datapath.pipeline import LinkBelow, LocalPorts
from linkbridge.errors import ConfigError
from linkbridge.plugin.registry import get_plugin_manager


def options(*argv: str) -> UpOptions:
    return UpOptions.from_args(build_parser().parse_args(list(argv)))


def test_positional_form_becomes_ports_remote_and_mtu() -> None:
    up = options("up", "2001", "2002", "10.0.2.2", "100")
    assert (up.rx, up.tx, up.remote, up.mtu, up.link) == (2001, 2002, ("10.0.2.2",), 100, ())


def test_tunnel_command_has_no_link_side() -> None:
    tunnel = options("tunnel", "--rx", "1", "--tx", "2", "--remote", "10.0.0.1")
    assert (tunnel.link, tunnel.via, tunnel.config) == ((), (), None)
    plan = plan_up(tunnel, InstalledPlugins(get_plugin_manager))
    assert plan.pipeline.description.lower.below == LocalPorts(1, 2, tunnel.host)


def test_link_side_is_planned_with_its_fragmentation() -> None:
    up = options("up", "--link", "udp:127.0.0.1:9?mtu=500", "--mtu", "1400",
                 "--remote", "10.0.0.1")
    plan = plan_up(up, InstalledPlugins(get_plugin_manager))
    assert isinstance(plan.pipeline.description.lower.below, LinkBelow)
    assert (plan.spec.mtu, plan.pipeline.fragment_frame) == (1400, 500)


def test_kernel_spec_comes_from_plain_values() -> None:
    spec = kernel_spec(options("up", "--backend", "fou", "2001", "2002", "10.0.2.0/24"))
    assert (spec.rx, spec.tx, spec.host, spec.mtu) == (2001, 2002, "127.0.0.1", 1472)
    assert [str(net) for net in spec.remotes] == ["10.0.2.0/24"]
    with pytest.raises(ConfigError, match="--via is not available"):
        kernel_spec(options("up", "--backend", "fou", "--rx", "1", "--tx", "2", "--via", "sim:"))


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[pluggy.PluginManager]:
    """Every plugin manager `main` builds in this test."""
    built: list[pluggy.PluginManager] = []

    def counting() -> pluggy.PluginManager:
        built.append(get_plugin_manager())
        return built[-1]

    monkeypatch.setattr(cli, "get_plugin_manager", counting)
    return built


def test_status_loads_no_plugins(loads: list[pluggy.PluginManager], run_dir: Path) -> None:
    assert cli.main(["status", "--json"]) == 0
    assert loads == []


def test_one_plugin_manager_for_config_checks_and_planning(
    loads: list[pluggy.PluginManager], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "two.toml"
    config.write_text('[[tunnel]]\nlink = "udp:127.0.0.1:9"\nremote = "10.0.0.1"\nuser = "a"\n'
                      '[[tunnel]]\nlink = "udp:127.0.0.1:8"\nremote = "10.0.0.2"\nuser = "b"\n')
    assert cli.main(["up", "-c", str(config)]) == 2
    assert "one process runs as one user" in capsys.readouterr().err
    assert len(loads) == 1
