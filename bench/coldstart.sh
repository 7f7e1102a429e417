#!/usr/bin/env bash
# Cold start: first-byte latency of a request that arrives at zero instances,
# with a warm frozen instance (`warm = 1`) versus without (a cold start), for a
# process pool whose instance takes COLD_APP_START seconds to start (a `sleep`
# before `drover backend`, like a Flask app's import time) and, with
# COLD_DOCKER=1, a docker pool of the test image. Prints a markdown table.
#
#   bash bench/coldstart.sh                 # process pool, 5 rounds each
#   COLD_DOCKER=1 bash bench/coldstart.sh   # docker too (builds the test image)
#
# Settings (env): COLD_ROUNDS=5 COLD_APP_START=1 COLD_PORT=18280 COLD_ADMIN_PORT=19290
#   DROVER_BIN (default target/release/drover, else target/debug/drover)
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${COLD_ROUNDS:-5}
APP_START=${COLD_APP_START:-1}
PORT=${COLD_PORT:-18280}
ADMIN=${COLD_ADMIN_PORT:-19290}
BIN=${DROVER_BIN:-}
if [ -z "$BIN" ]; then
  if [ -x target/release/drover ]; then BIN=target/release/drover; else BIN=target/debug/drover; fi
fi
BIN=$(readlink -f "$BIN")
WORK=$(mktemp -d)
PID=""
IMAGE=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  [ -n "$IMAGE" ] && docker rmi -f "$IMAGE" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

pool_field() { # KEY: a field of GET /api/v1/pools/app (python expression on p)
  curl -fsS "http://127.0.0.1:$ADMIN/api/v1/pools/app" | python3 -c "import json,sys; p=json.load(sys.stdin); print($1)"
}

# run_case LABEL WARM INSTANCES_TOML
run_case() {
  local label=$1 warm=$2 instances=$3
  cat >"$WORK/drover.toml" <<TOML
[server]
listen = ["127.0.0.1:$PORT"]
[admin]
listen = "127.0.0.1:$ADMIN"
[log]
access = false
[pools.app.health]
path = "/health"
interval = "100ms"
rise = 1
[pools.app.instances]
$instances
start_timeout = "60s"
stop_timeout = "2s"
drain_timeout = "1s"
[pools.app.autoscale]
min = 0
max = 2
interval = "500ms"
target_inflight = 5
scale_down_cooldown = "0s"
idle_timeout = "1s"
hold_timeout = "60s"
warm = $warm
TOML
  "$BIN" run -c "$WORK/drover.toml" 2>"$WORK/drover.log" &
  PID=$!
  local times=()
  for _ in $(seq "$ROUNDS"); do
    # At zero (and, with warm, a warm instance ready and frozen).
    local deadline=$((SECONDS + 120))
    until [ "$(pool_field "p['desired'] == 0 and not p['backends'] and (p.get('warm') or {}).get('ready', 0) >= $warm" 2>/dev/null)" = "True" ]; do
      [ $SECONDS -lt $deadline ] || { echo "timed out waiting for zero" >&2; exit 1; }
      sleep 0.2
    done
    sleep 0.5
    times+=("$(curl -fsS -o /dev/null -w '%{time_starttransfer}' "http://127.0.0.1:$PORT/")")
  done
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
  printf '%s\n' "${times[@]}" | python3 -c "
import sys, statistics
t = sorted(float(x) * 1000 for x in sys.stdin.read().split())
print(f'| $label | {len(t)} | {statistics.median(t):.1f} | {t[0]:.1f} | {t[-1]:.1f} |')"
}

echo "| pool | rounds | first byte median ms | min ms | max ms |"
echo "|---|---:|---:|---:|---:|"
PROC="provider = \"process\"
command = [\"sh\", \"-c\", \"sleep $APP_START; exec $BIN backend --listen 127.0.0.1:{port}\"]"
run_case "process, cold (app start ${APP_START}s)" 0 "$PROC"
run_case "process, warm frozen" 1 "$PROC"
if [ "${COLD_DOCKER:-0}" = 1 ]; then
  IMAGE="drover-backend:coldstart-$$"
  bash scripts/build-test-image.sh "$BIN" "$IMAGE" >/dev/null
  DOCK="provider = \"docker\"
image = \"$IMAGE\"
container_port = 8080"
  run_case "docker, cold" 0 "$DOCK"
  run_case "docker, warm paused" 1 "$DOCK"
fi
