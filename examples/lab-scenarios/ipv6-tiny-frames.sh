#!/usr/bin/env bash
# IPv6 (tunnel MTU 1280) over a link that carries only 64-byte frames and loses 2% of them.
set -euo pipefail
source "$(dirname "$0")/_lab.sh"
exec $LINKBRIDGE lab --link "sim:?mtu=64&loss=2%&seed=7" --mtu 1280 --ipv6 --bytes 200000 "$@"
