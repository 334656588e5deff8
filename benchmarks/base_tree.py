"""Another commit's linkbridge installed beside this tree's, for a benchmark that runs both: the
commit's files and a venv of their own (linkbridge and the example plugin installed in it as
`./run.sh` installs them here), made once under /var/tmp/linkbridge-base-<commit> and reused.
Each side's tunnels then start the same way: a plain process of its venv's `linkbridge`."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from linkbridge.errors import LinkbridgeError

CACHE_DIR = "/var/tmp"
TREE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # this tree: its git repo
READY = "ready"  # the file that says a cached copy is complete: the full commit hash
EXAMPLE_PLUGIN = "examples/linkbridge-tcp"  # installed beside linkbridge, as ./run.sh does


@dataclass(frozen=True)
class Installed:
    """One tree's linkbridge: how to start it, and what it is (a commit, or this tree)."""

    program: tuple[str, ...]
    label: str


def console_script(venv_bin: str) -> tuple[str, ...]:
    """The command that runs the `linkbridge` of the venv whose scripts are in `venv_bin`,
    with PYTHONPATH unset: each side imports its own tree's linkbridge and plugins, whatever
    the environment the benchmark was started in."""
    return ("env", "-u", "PYTHONPATH", os.path.join(venv_bin, "linkbridge"))


def this_tree() -> Installed:
    """This tree's linkbridge: the console script of the venv running this benchmark,
    labelled with its commit (+ when files differ from it)."""
    head = git("rev-parse", "--short=9", "HEAD").stdout.decode().strip() or "this tree"
    changed = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    return Installed(console_script(os.path.dirname(sys.executable)),
                     head + "+" * bool(changed))


def full_commit(commit: str) -> str:
    """`commit` (any name git knows) as a full hash; LinkbridgeError for an unknown one."""
    found = git("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}")
    if found.returncode:
        raise LinkbridgeError(f"--base {commit}: no such commit in {TREE}")
    return found.stdout.decode().strip()


def git(*args: str, stdout: int = subprocess.PIPE) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", TREE, *args], stdout=stdout, stderr=subprocess.PIPE,
                          check=False)


def base_tree(commit: str, cache_dir: str = CACHE_DIR) -> Installed:
    """The linkbridge of `commit`, installed under `cache_dir` unless it already is there (a
    copy left half-made is made again). A lock keeps two benchmarks from making it at once."""
    full = full_commit(commit)
    root = os.path.join(cache_dir, f"linkbridge-base-{full[:12]}")
    installed = Installed(console_script(os.path.join(root, "venv", "bin")), full[:9])
    with locked(f"{root}.lock"):
        if cached(root, full):
            return installed
        print(f"benchmarks: installing {full[:9]} into {root} (once)", file=sys.stderr,
              flush=True)
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(root)
        extract(full, os.path.join(root, "tree"))
        install(root)
        with open(os.path.join(root, READY), "w") as ready:
            ready.write(full)
    return installed


def cached(root: str, full: str) -> bool:
    with contextlib.suppress(OSError), open(os.path.join(root, READY)) as ready:
        return ready.read() == full
    return False


@contextlib.contextmanager
def locked(path: str) -> Iterator[None]:
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def extract(full: str, path: str) -> None:
    """The files of commit `full` into `path`."""
    os.makedirs(path)
    archive = git("archive", full)
    if archive.returncode:
        raise LinkbridgeError(f"git archive {full[:9]}: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", path], input=archive.stdout, check=True)


def install(root: str) -> None:
    """A venv in `root`/venv with the tree in `root`/tree installed in strict editable mode,
    with the example plugin where the tree has it, as ./run.sh installs this tree (but each
    package built in an isolated environment from its own build requirements, which a commit
    may state differently)."""
    venv, tree = os.path.join(root, "venv"), os.path.join(root, "tree")
    run([sys.executable, "-m", "venv", venv], "create the venv")
    pip = [os.path.join(venv, "bin", "python"), "-m", "pip", "install", "-q"]
    run([*pip, "-e", tree, "--config-settings", "editable_mode=strict"], "install linkbridge")
    if os.path.isdir(os.path.join(tree, EXAMPLE_PLUGIN)):
        run([*pip, "-e", os.path.join(tree, EXAMPLE_PLUGIN)], "install the example plugin")


def run(argv: Sequence[str], what: str) -> None:
    done = subprocess.run(list(argv), capture_output=True, check=False)
    if done.returncode:
        output = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
        raise LinkbridgeError(f"cannot {what}: {output[-1] if output else done.returncode}")
