#!/usr/bin/env bash
# Started by ../shared/bench/peers.sh as OURS_CMD: turns its environment
# (BACKENDS=a,b LISTEN=host:port) into a drover config and runs drover on it.
# HTTP1_CODEC=native|hyper sets server.http1_codec (default: drover's default).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${DROVER_BIN:-$here/../target/release/drover}
cfg=$(mktemp /tmp/drover-bench.XXXXXX.toml)
codec=""
[[ -n ${HTTP1_CODEC:-} ]] && codec="http1_codec = \"$HTTP1_CODEC\""
backends=$(echo "$BACKENDS" | sed 's/[^,][^,]*/"&"/g')
cat >"$cfg" <<TOML
[server]
listen = ["$LISTEN"]
$codec
[admin]
listen = "127.0.0.1:0"
[log]
access = ${ACCESS_LOG:-false}
[pools.bench]
balance = "round_robin"
backends = [$backends]
TOML
exec "$bin" -q --log-format json run -c "$cfg"
