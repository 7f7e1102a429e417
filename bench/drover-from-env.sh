#!/usr/bin/env bash
# Started by ../shared/bench/peers.sh as OURS_CMD: turns its environment
# (BACKENDS=a,b LISTEN=host:port) into a drover config and runs drover on it.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${DROVER_BIN:-$here/../target/release/drover}
cfg=$(mktemp /tmp/drover-bench.XXXXXX.toml)
backends=$(echo "$BACKENDS" | sed 's/[^,][^,]*/"&"/g')
cat >"$cfg" <<TOML
[server]
listen = ["$LISTEN"]
[admin]
listen = "127.0.0.1:0"
[log]
access = ${ACCESS_LOG:-false}
[pools.bench]
balance = "round_robin"
backends = [$backends]
TOML
exec "$bin" -q --log-format json run -c "$cfg"
