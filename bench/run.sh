#!/usr/bin/env bash
# Measures drover against nginx and HAProxy with ../shared/bench/peers.sh
# (same machine, same run, peers alternated) and appends the table to bench/RESULTS.md.
#   bash bench/run.sh                 # default matrix (small, 64k; c=50, 256; 3 rounds)
#   REPS=5 bash bench/run.sh          # more rounds
#   PGO=1 bash bench/run.sh           # drover built with profile-guided optimisation (bench/pgo.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
peers=${PEERS_SH:-../shared/bench/peers.sh}
[[ -f $peers ]] || { echo "bench/run.sh: $peers not found (the shared bench harness)"; exit 1; }
if [[ ${PGO:-0} == 1 ]]; then
  bash bench/pgo.sh
  build="PGO build (bench/pgo.sh)"
else
  cargo build --release
  build="plain release build"
fi
out=$(mktemp)
OURS_CMD="bash $PWD/bench/drover-from-env.sh" OURS_NAME=drover OURS_PORT=${OURS_PORT:-18092} \
  NGINX_UPSTREAM_KEEPALIVE=${NGINX_UPSTREAM_KEEPALIVE:-512} RESULTS_DIR=$PWD/bench/results \
  bash "$peers" | tee "$out"
{
  echo
  echo "## $(date -u +%Y-%m-%d) — commit $(git rev-parse --short HEAD), $build"
  echo
  echo '```'
  cat "$out"
  echo '```'
} >>bench/RESULTS.md
echo "appended to bench/RESULTS.md"
