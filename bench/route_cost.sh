#!/usr/bin/env bash
# Instructions per proxied request (callgrind) with and without a route's
# header rule and rate limit, side by side: deterministic on a busy machine,
# unlike wall-clock numbers.
#
#   bash bench/route_cost.sh [DROVER_BIN]     # default target/release/drover
#
# For each of four configs (plain route; + one `request_headers` set rule with
# a placeholder; + a `rate_limit` keyed by client IP that never refuses; the plain
# route on hyper's server and client, `server.http1_codec = "hyper"` (`hyper_codec`),
# against drover's own codec of the first, the default; `native_codec` names the
# native codec explicitly) — CONFIGS="plain ..." picks some:
# drover --threads 1 runs under `valgrind --tool=callgrind`, `wrk -t1 -c50` on
# `/bytes/100` warms it for WARM seconds, the counters are zeroed
# (`callgrind_control -z`), wrk loads it for LOAD seconds, the counters are
# dumped, and the instructions are divided by the requests drover counted
# (`drover_requests_total`). Needs valgrind, wrk and curl. KEEP_CG=DIR keeps
# each profile there (for callgrind_annotate).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/drover}
warm=${WARM:-5}
load=${LOAD:-15}
reps=${REPS:-2}
work=$(mktemp -d /tmp/drover-route-cost.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

bport=$(free_port)
"$bin" -q backend --listen "127.0.0.1:$bport" --name b 2>/dev/null &
pids+=($!)

run_one() { # name, extra route keys, extra [server] keys
  local name=$1 extra=$2 server=${3:-} port aport cfg out pid before after ir
  port=$(free_port); aport=$(free_port)
  cfg=$work/$name.toml
  cat >"$cfg" <<TOML
[server]
listen = ["127.0.0.1:$port"]
$server
[admin]
listen = "127.0.0.1:$aport"
[log]
access = false
[[routes]]
pool = "bench"
$extra
[pools.bench]
backends = ["127.0.0.1:$bport"]
TOML
  out=$work/$name.cg
  valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" -q run -c "$cfg" --threads 1 2>/dev/null &
  pid=$!
  for _ in $(seq 1 300); do curl -sf -o /dev/null "http://127.0.0.1:$port/bytes/1" && break; sleep 0.2; done
  wrk -t1 -c50 -d"${warm}s" "http://127.0.0.1:$port/bytes/100" >/dev/null
  count() { curl -s "http://127.0.0.1:$aport/metrics" | awk '/^drover_requests_total/ {s += $2} END {print s + 0}'; }
  before=$(count)
  callgrind_control -z "$pid" >/dev/null 2>&1
  wrk -t1 -c50 -d"${load}s" "http://127.0.0.1:$port/bytes/100" >/dev/null
  callgrind_control -d "$pid" >/dev/null 2>&1
  after=$(count)
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$out".*)
  # Calls to malloc / calloc / realloc (callgrind's call counts; names are
  # compressed: `cfn=(N) name` the first time, `cfn=(N)` after).
  allocs=$(awk '
    /^c?fn=/ { id = $1; sub(/^c?fn=/, "", id); if (NF > 1) name[id] = $2; cur = ($0 ~ /^cfn=/) ? name[id] : ""; next }
    /^calls=/ { if (cur == "malloc" || cur == "calloc" || cur == "realloc") { split($1, c, "="); n += c[2] } cur = ""; next }
    END { print n + 0 }' "$out".*)
  [[ -n ${KEEP_CG:-} ]] && cp "$(ls "$out".* | head -1)" "$KEEP_CG/$name.cg"
  rm -f "$out" "$out".*
  local reqs=$(( after - before ))
  echo "$name $reqs requests, $(( ir / reqs )) instructions/request, $(awk -v a="$allocs" -v r="$reqs" 'BEGIN { printf "%.2f", a / r }') allocations/request"
}

configs=${CONFIGS:-"plain header_rule rate_limit hyper_codec"}
for r in $(seq 1 "$reps"); do
  for c in $configs; do
    case $c in
      plain) run_one plain "" ;;
      header_rule) run_one header_rule 'request_headers = { set = { X-Client = "${client_ip}" } }' ;;
      rate_limit) run_one rate_limit 'rate_limit = { requests = 1000000000, per = "1s", key = "client_ip" }' ;;
      native_codec) run_one native_codec "" 'http1_codec = "native"' ;;
      hyper_codec) run_one hyper_codec "" 'http1_codec = "hyper"' ;;
      *) echo "unknown config $c" >&2; exit 2 ;;
    esac
  done
done
