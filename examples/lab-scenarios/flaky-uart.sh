#!/usr/bin/env bash
# A 115200 baud UART with a fault injector in front of it on both sides.
set -euo pipefail
source "$(dirname "$0")/_lab.sh"
exec $LINKBRIDGE lab --link "serial:?baud=115200&crc=1" --via "sim:?loss=1%&duplicate=2%&seed=3" \
    --count 20 "$@"
