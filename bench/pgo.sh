#!/usr/bin/env bash
# Builds target/release/drover with profile-guided optimisation (PGO):
#   1. an instrumented build (target/pgo-gen) proxies a training load: small and
#      64 KiB GETs, chunked responses and uploads, at 50 and 256 connections,
#      over two built-in backends (`drover backend`, from a normal release build);
#   2. the profile is merged with llvm-profdata (rustup component llvm-tools);
#   3. the release build is redone with -Cprofile-use.
# Why: callgrind's cache simulation shows drover's hot path bound by instruction
# cache misses (1,906 L1i misses per proxied request before, 939 with PGO: HAProxy
# 898); see bench/RESULTS.md. Needs wrk and curl. Takes ~8 minutes on 2 cores.
#   bash bench/pgo.sh                # then: bash bench/run.sh (PGO=1 does both)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
log() { echo "pgo.sh: $*" >&2; }
die() { log "$*"; exit 1; }
command -v wrk >/dev/null || die "wrk is needed (apt-get install wrk)"
command -v curl >/dev/null || die "curl is needed"

sysroot=$(rustc --print sysroot)
host=$(rustc -vV | sed -n 's/^host: //p')
profdata=$sysroot/lib/rustlib/$host/bin/llvm-profdata
if [[ ! -x $profdata ]]; then
  log "installing llvm-tools (rustup component add llvm-tools-preview)"
  rustup component add llvm-tools-preview >&2 || die "llvm-profdata not found and llvm-tools could not be installed"
fi
[[ -x $profdata ]] || die "llvm-profdata not found at $profdata"

work=$(mktemp -d /tmp/drover-pgo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

log "plain release build (for the backends)"
cargo build --release >&2
cp target/release/drover "$work/backend-bin"

log "instrumented build"
RUSTFLAGS="-Cprofile-generate=$work/prof" CARGO_TARGET_DIR=$root/target/pgo-gen \
  cargo build --release >&2

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { # url
  for _ in $(seq 1 100); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done
  die "$1 did not come up"
}
b1=$(port); b2=$(port); px=$(port)
"$work/backend-bin" backend --listen "127.0.0.1:$b1" >/dev/null 2>&1 & pids+=($!)
"$work/backend-bin" backend --listen "127.0.0.1:$b2" >/dev/null 2>&1 & pids+=($!)
cat >"$work/drover.toml" <<TOML
[server]
listen = ["127.0.0.1:$px"]
[admin]
listen = "127.0.0.1:0"
[pools.train]
balance = "round_robin"
backends = ["127.0.0.1:$b1", "127.0.0.1:$b2"]
TOML
wait_up "http://127.0.0.1:$b1/bytes/1"
wait_up "http://127.0.0.1:$b2/bytes/1"
target/pgo-gen/release/drover -q run -c "$work/drover.toml" >"$work/drover.log" 2>&1 &
proxy=$!
pids+=("$proxy")
wait_up "http://127.0.0.1:$px/bytes/1"

log "training load"
url=http://127.0.0.1:$px
for c in 50 256; do
  wrk -t1 -c"$c" -d6s "$url/bytes/100" >&2
  wrk -t1 -c"$c" -d4s "$url/bytes/65536" >&2
done
wrk -t1 -c20 -d2s "$url/bytes/65536?chunked=1" >&2
head -c 1048576 /dev/zero >"$work/upload"
for _ in $(seq 1 200); do
  curl -fs -o /dev/null --data-binary @"$work/upload" "$url/upload" || true
done
kill -INT "$proxy"
wait "$proxy" || true

shopt -s nullglob
raw=("$work"/prof/*.profraw)
((${#raw[@]} > 0)) || die "the instrumented drover wrote no profile (see $work/drover.log)"
"$profdata" merge -o "$work/drover.profdata" "${raw[@]}"

log "optimised build (-Cprofile-use)"
RUSTFLAGS="-Cprofile-use=$work/drover.profdata" cargo build --release >&2
log "done: target/release/drover is the PGO build (a plain 'cargo build --release' replaces it)"
