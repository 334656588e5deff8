"""`up --backend fou` / `down` on bad input and on a kernel without fou: one line, nothing made."""

from __future__ import annotations

import subprocess

import pytest

from linkbridge.cli.main import main
from linkbridge.tunnel.kernel.state import namespace_dir


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("linkbridge: error: "), err
    return code, err


@pytest.mark.parametrize(("argv", "message"), [
    (["--link", "udp:127.0.0.1:9", "--remote", "10.0.2.2"], "talks to a link program"),
    (["--rx", "2001", "--remote", "10.0.2.2"], "needs local ports"),
    (["--rx", "2001", "--tx", "2002", "--remote", "10.0.2.2", "--host", "192.0.2.1"],
     "IPv4 loopback"),
    (["--rx", "2001", "--tx", "2002", "--remote", "fd00::1"], "IPv4 only"),
    (["--rx", "2001", "--tx", "2002", "--remote", "10.0.2.2", "--user", "nobody"],
     "--user is not available"),
    (["--rx", "2001", "--tx", "2002", "--remote", "10.0.2.2", "--via", "sim:"],
     "--via is not available"),
    (["2001", "2002", "10.0.2.2", "40"], "MTU 40 out of range"),
    (["2001", "2002", "10.0.2.300"], "bad remote"),
])
def test_bad_input_is_one_line(capsys: pytest.CaptureFixture[str], argv: list[str],
                               message: str) -> None:
    code, err = run(capsys, "up", "--backend", "fou", *argv)
    assert code == 2 and message in err


def kernel_has_fou() -> bool:
    probe = subprocess.run(["modprobe", "-n", "-q", "fou"], capture_output=True, check=False)
    return probe.returncode == 0


def test_missing_modules_suggest_userspace(root: None, capsys: pytest.CaptureFixture[str]) -> None:
    if kernel_has_fou():
        pytest.skip("this kernel has the fou module (the VM tests cover the backend)")
    code, err = run(capsys, "up", "--backend", "fou", "2001", "2002", "10.0.2.2", "100")
    assert code == 1
    assert "lacks the" in err and "userspace backend" in err
    assert not namespace_dir().exists()


def test_down_of_unknown_tunnel(root: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, "down", "fou7")
    assert code == 1 and "no kernel tunnel named fou7" in err
    code, err = run(capsys, "down")
    assert code == 2 and "give the tunnel" in err


def test_down_takes_a_port_in_range(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["down", "--rx", "70000"])
    assert exited.value.code == 2
    assert "argument --rx: port 70000 out of range 1..65535" in capsys.readouterr().err
