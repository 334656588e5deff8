#!/usr/bin/env bash
# A 9600 bit/s radio link: 100-byte frames, 5% loss, 40 ms delay each way.
set -euo pipefail
source "$(dirname "$0")/_lab.sh"
exec $LINKBRIDGE lab --link "sim:?mtu=100&loss=5%&delay=40ms&rate=9600&seed=1" --count 20 "$@"
