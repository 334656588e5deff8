#!/usr/bin/env bash
# Two LoRa radios (SF7, 500 kHz, 255-byte frames) sharing one half-duplex channel through the
# simulated medium, each held to 25% of any 4 s on air: airtime, collisions, duty-cycle waits.
set -euo pipefail
source "$(dirname "$0")/_lab.sh"
exec $LINKBRIDGE lab --link "sim:?duplex=half&sf=7&bw=500k&duty=25%&duty_window=4s&seed=1" \
    --count 5 --interval 0.3 "$@"
