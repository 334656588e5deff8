#!/usr/bin/env bash
# linkbridge quick start. Installs what it needs, then:
#   ./run.sh lab [ARGS]    run `linkbridge lab` (two network namespaces, a tunnel on each; as root)
#   ./run.sh test [ARGS]   lint and the whole test suite, in parallel (what CI runs)
#   ./run.sh test --quick [ARGS]  lint, then the unit tier and the pure conformance checks
#   ./run.sh lint          ruff, mypy --strict and the layer contracts (lint-imports)
#   ./run.sh bench [ARGS]  run the side-by-side benchmark (`bench before-after --base COMMIT`: A/B)
set -euo pipefail
cd "$(dirname "$0")"
VENV=.venv

need_debian() {  # install Debian packages whose command is missing: need_debian CMD PKG [CMD PKG...]
    local missing=()
    while (($#)); do
        command -v "$1" >/dev/null 2>&1 || missing+=("$2")
        shift 2
    done
    ((${#missing[@]})) || return 0
    if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null; then
        echo "run.sh: please install: ${missing[*]}" >&2
        return 0
    fi
    echo "run.sh: installing Debian packages: ${missing[*]}" >&2
    [[ -n "$(ls /var/lib/apt/lists 2>/dev/null | grep -v -e lock -e partial)" ]] || apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; }
}

setup() {
    need_debian python3 python3
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        need_debian __no_such_cmd__ python3-venv
    fi
    # (a venv whose creation was interrupted, e.g. by Ctrl-C, has no pip yet: made again)
    if [[ ! -x $VENV/bin/python || ! -e $VENV/bin/pip ]]; then
        rm -rf "$VENV"
        python3 -m venv "$VENV"
    fi
    # linkbridge is installed in setuptools' strict editable mode: it links every file of the
    # package into build/__editable__.linkbridge-*/ and puts that directory on the path, which
    # mypy follows too, so a plugin type-checks against the installed linkbridge without
    # MYPYPATH (docs/plugins.md). The default mode's import hook is invisible to mypy, and
    # `compat` puts only this directory on the path, not plugins/. The price: a file added or
    # removed after the install is not seen until the next one, so the stamp holds the list of
    # files, and a different list (or a missing link tree) installs again.
    # The stamp holds the build requirements too (an install before they went into the venv is
    # redone once).
    local stamp=$VENV/.installed wanted build_requires requires
    build_requires=$(python3 -c 'import tomllib
with open("pyproject.toml", "rb") as file:
    print(" ".join(tomllib.load(file).get("build-system", {}).get("requires", [])))')
    read -ra requires <<<"$build_requires"
    wanted=$(find linkbridge plugins \( -name '*.py' -o -name py.typed \) -print | LC_ALL=C sort)
    wanted=$build_requires$'\n'$wanted
    if [[ ! -f $stamp || pyproject.toml -nt $stamp || examples/linkbridge-tcp/pyproject.toml -nt $stamp
          || "$(<"$stamp")" != "$wanted" ]] || ! compgen -G 'build/__editable__.linkbridge-*' >/dev/null
    then
        # one progress line; pip's and the build backend's chatter goes to a log shown on failure
        local log=$VENV/install.log
        echo "run.sh: installing linkbridge into $VENV (log: $log)" >&2
        # The build requirements (setuptools and, for the manual pages, the runtime
        # dependencies) go into the venv first and both packages build there: an isolated build
        # would install them again into a throwaway environment for each package (about 10
        # CPU-seconds of a fresh clone's set-up); the wheel test builds the same way.
        {
            { ((${#requires[@]} == 0)) || "$VENV/bin/python" -m pip install -q "${requires[@]}"; } &&
            "$VENV/bin/python" -m pip install -q --no-build-isolation -e '.[test,fuzz]' \
                --config-settings editable_mode=strict &&
            # the example third-party plugin (docs/plugins.md): the test suite runs a lab over it
            "$VENV/bin/python" -m pip install -q --no-build-isolation -e examples/linkbridge-tcp
        } >"$log" 2>&1 || { tail -n 30 "$log" >&2; echo "run.sh: install failed, see $log" >&2; exit 1; }
        printf '%s' "$wanted" >"$stamp"
    fi
}

# what ruff checks and what mypy --strict types (README "Development")
LINTED=(linkbridge plugins examples tests benchmarks)
TYPED=(linkbridge plugins examples/linkbridge-tcp/linkbridge_tcp)

lint() {  # ruff, mypy and lint-imports side by side; a failing one fails with its output
    local out failed=() name pid
    out=$(mktemp -d)
    declare -A pids=()
    "$VENV/bin/ruff" check "${LINTED[@]}" >"$out/ruff" 2>&1 & pids[ruff]=$!
    "$VENV/bin/mypy" --strict "${TYPED[@]}" >"$out/mypy" 2>&1 & pids[mypy]=$!
    "$VENV/bin/lint-imports" >"$out/lint-imports" 2>&1 & pids[lint-imports]=$!
    for name in ruff mypy lint-imports; do
        pid=${pids[$name]}
        wait "$pid" || failed+=("$name")
    done
    for name in "${failed[@]}"; do
        echo "run.sh: $name failed:" >&2
        cat "$out/$name" >&2
    done
    rm -rf "$out"
    if ((${#failed[@]})); then
        echo "run.sh: lint failed (${failed[*]}): fix it, or run the tests alone with" \
            ".venv/bin/python -m pytest" >&2
        return 1
    fi
    echo "run.sh: lint clean (ruff, mypy --strict, lint-imports)" >&2
}

cmd=${1:-help}
shift || true
case "$cmd" in
    lab)
        setup
        exec "$VENV/bin/linkbridge" lab "$@"
        ;;
    lint)
        setup
        lint
        ;;
    test)
        setup
        # The suite starts hundreds of Python processes (tunnels, CLI runs, pytest workers):
        # each would compile linkbridge from source where no bytecode is cached (a fresh clone,
        # or PYTHONDONTWRITEBYTECODE set, as in some CI environments): about a quarter of a
        # CPU-second each. Compile once here (both the source tree, which pytest imports, and
        # the strict editable install's link tree, which the tunnels import), and let pytest
        # cache its rewritten test modules (each worker rewrites every one otherwise: ~7 s).
        unset PYTHONDONTWRITEBYTECODE
        "$VENV/bin/python" -m compileall -q -j 0 linkbridge plugins tests benchmarks examples \
            build/__editable__.linkbridge-* >/dev/null
        quick=0
        if [[ ${1:-} == --quick ]]; then
            quick=1
            shift
        fi
        if ((quick)); then
            lint
            # the unit tier and the pure conformance checks (tests/conftest.py marks them `quick`)
            # (25 examples per property test instead of 100)
            exec "$VENV/bin/python" -m pytest -n 2 -m quick --hypothesis-profile quick \
                tests/unit tests/integration "$@"
        fi
        need_debian socat socat tcpdump tcpdump
        need_debian zsh zsh groff groff man man-db  # completion and manual page tests
        # tests/vm boots a stock Debian kernel (fou, ipip, slip, netem) under qemu
        need_debian qemu-system-x86_64 qemu-system-x86 busybox busybox-static slattach net-tools \
            kissattach ax25-tools
        compgen -G '/boot/vmlinuz-*' >/dev/null || need_debian __no_such_cmd__ linux-image-amd64
        # the whole suite: the VM's boot and guest checks (~3.5 minutes under TCG) start now,
        # beside the lint step and collection; pytest waits for their results
        # (tests/helpers/vm_session.py). Lint runs beside the tests too (its own step, its
        # verdict printed when they end): ~10 s off the run.
        work=$(mktemp -d /tmp/lb-test-XXXXXX)
        pids=()
        trap 'kill "${pids[@]}" 2>/dev/null || true; wait; rm -rf "$work"' EXIT
        if (($# == 0)); then
            export LINKBRIDGE_VM_DIR=$work/vm
            mkdir "$LINKBRIDGE_VM_DIR"
            "$VENV/bin/python" -m tests.helpers.vm_session "$LINKBRIDGE_VM_DIR" &
            pids+=($!)
        fi
        # (at nice 19: it fills the CPU the workers' start leaves, not theirs)
        (renice -n 19 "$BASHPID" >/dev/null; lint) >"$work/lint.log" 2>&1 &
        lint_pid=$!
        pids+=("$lint_pid")
        # the tiers on $LINKBRIDGE_TEST_WORKERS pytest-xdist workers, a test file on one worker
        # (its module fixtures built once, its tests one after another; xdist_group marks do
        # nothing under pytest 9). Files go out in collection order (the integration tier's
        # long waits first, tests/vm last, when the VM has finished), not xdist's
        # most-tests-first, which handed tests/vm to a worker early to wait minutes for the VM.
        set +e
        "$VENV/bin/python" -m pytest -n "${LINKBRIDGE_TEST_WORKERS:-4}" --dist loadfile \
            --no-loadscope-reorder tests "$@"
        rc=$?
        wait "$lint_pid" || { ((rc)) || rc=1; }
        set -e
        cat "$work/lint.log" >&2
        # pytest exit 5 means "no tests collected": that is a failure for us too.
        exit $rc
        ;;
    bench)
        setup
        need_debian socat socat iperf3 iperf3
        exec "$VENV/bin/python" -m benchmarks "$@"
        ;;
    *)
        sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
