#!/usr/bin/env bash
# SLIP over a null-modem cable at 115200 baud (a pty pair paced at baud/10 bytes per second).
set -euo pipefail
source "$(dirname "$0")/_lab.sh"
exec $LINKBRIDGE lab --link "serial:?baud=115200&crc=1" --count 10 "$@"
