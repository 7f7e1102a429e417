#!/usr/bin/env bash
# Soak: the built-in autoscaled demo pool (1..5 `drover backend` instances) under
# steady wrk load for SOAK_SECS (default 600 = 10 minutes; not run in CI),
# alternating heavy and light phases so the pool cycles between 1 and 5, with
# one instance SIGKILLed every SOAK_KILL_EVERY seconds. drover's RSS, open fds
# and threads (/proc/PID/status), its in-flight requests and upstream connects
# (/metrics), client connections (ss) and the instance count are sampled every
# SOAK_SAMPLE_EVERY seconds into a TSV and a markdown table, plotted to a PNG
# when python3 has matplotlib. They must be flat: the script compares the idle
# samples before and after the load and exits 1 on a leak.
# Reading the phase table: a kill that hits the pool's only instance (light
# phases run at min = 1) holds the requests it refused until the replacement
# passes its check (~1.5 s, shown as p99), instead of answering 502.
#
#   bash bench/soak.sh                          # 10 minutes
#   SOAK_SECS=90 SOAK_PHASE=30 bash bench/soak.sh   # a quick proof
#   SOAK_APPEND=1 bash bench/soak.sh            # also append the summary to bench/RESULTS.md
#
# Settings (env): SOAK_SECS=600 SOAK_PHASE=60 (length of one heavy or light phase)
#   SOAK_HEAVY_CONNS=40 SOAK_LIGHT_CONNS=2 SOAK_PATH=/delay/200 SOAK_KILL_EVERY=30
#   SOAK_SAMPLE_EVERY=5 SOAK_PORT=18180 SOAK_ADMIN_PORT=19190
#   DROVER_BIN (default: $CARGO_TARGET_DIR or target, /release/drover; built if missing)
#   SOAK_OUT (default bench/results/soak-<UTC time>)
#   Leak limits: SOAK_MAX_FD_GROWTH=16 SOAK_MAX_THREAD_GROWTH=4 SOAK_MAX_RSS_GROWTH_KB=32768
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${SOAK_SECS:-600}
PHASE=${SOAK_PHASE:-60}
HEAVY=${SOAK_HEAVY_CONNS:-40}
LIGHT=${SOAK_LIGHT_CONNS:-2}
LOAD_PATH=${SOAK_PATH:-/delay/200}
KILL_EVERY=${SOAK_KILL_EVERY:-30}
SAMPLE_EVERY=${SOAK_SAMPLE_EVERY:-5}
PORT=${SOAK_PORT:-18180}
ADMIN_PORT=${SOAK_ADMIN_PORT:-19190}
OUT=${SOAK_OUT:-bench/results/soak-$(date -u +%Y%m%dT%H%M%SZ)}
BIN=${DROVER_BIN:-${CARGO_TARGET_DIR:-target}/release/drover}

T0=$SECONDS
log() { printf '[soak %4ds] %s\n' $((SECONDS - T0)) "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

command -v wrk >/dev/null || die "wrk not found (apt-get install wrk)"
command -v ss >/dev/null || die "ss not found (apt-get install iproute2)"
if [[ ! -x $BIN ]]; then
  log "building $BIN (cargo build --release)"
  cargo build --release
fi
[[ -x $BIN ]] || die "$BIN missing"
BIN=$(realpath "$BIN")
mkdir -p "$OUT"
OUT=$(realpath "$OUT")

# The demo's own config (src/config/starter.rs, DEMO_TOML) on the soak ports,
# so the run is the demo and does not take 8080/9090 from anyone.
awk '/^pub const DEMO_TOML: &str = r#"/ {on=1; next} on && /^"#;/ {exit} on' \
  src/config/starter.rs |
  sed -e "s/127.0.0.1:8080/127.0.0.1:$PORT/" -e "s/127.0.0.1:9090/127.0.0.1:$ADMIN_PORT/" \
    >"$OUT/drover.toml"
grep -q "127.0.0.1:$PORT" "$OUT/drover.toml" || die "could not extract the demo config"
DROVER_DEMO_EXE=$BIN "$BIN" check -c "$OUT/drover.toml" >/dev/null || die "demo config invalid: $OUT/drover.toml"

PIDS=()          # background jobs this script started; only these are stopped
DROVER_PID=
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [[ -n $DROVER_PID ]] && kill -0 "$DROVER_PID" 2>/dev/null; then
    kill -TERM "$DROVER_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT

DROVER_DEMO_EXE=$BIN "$BIN" --log-format json run -c "$OUT/drover.toml" \
  >"$OUT/access.log" 2>"$OUT/drover.log" &
DROVER_PID=$!
ADMIN=http://127.0.0.1:$ADMIN_PORT
URL=http://127.0.0.1:$PORT

metrics() { curl -s --max-time 2 "$ADMIN/metrics" || true; }
# Sum of a metric's series (lines starting with NAME{ or NAME ).
msum() { awk -v n="$1" 'index($0, n"{") == 1 || index($0, n" ") == 1 { s += $NF } END { print s + 0 }'; }
# The application processes: drover -> `drover __supervise` -> the instance.
instances() {
  local sup
  for sup in $(ps -o pid= --ppid "$DROVER_PID" 2>/dev/null); do
    ps -o pid= --ppid "$sup" 2>/dev/null || true
  done
}
# Every process below drover, at any depth.
descendants() {
  local todo=("$1") p c n=0
  while ((${#todo[@]})); do
    p=${todo[0]}; todo=("${todo[@]:1}")
    for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do todo+=("$c"); n=$((n + 1)); done
  done
  echo "$n"
}
# drover's established upstream connections (neither the proxy nor the admin port).
upstream_conns() {
  ss -Htnp state established 2>/dev/null | grep -F "pid=$DROVER_PID," |
    awk -v p=":$PORT" -v a=":$ADMIN_PORT" '{ l = $3; if (substr(l, length(l) - length(p) + 1) != p &&
      substr(l, length(l) - length(a) + 1) != a) n++ } END { print n + 0 }'
}
# drover's TCP sockets by state and peer port, for the record.
sockets() {
  ss -Htanp 2>/dev/null | grep -F "pid=$DROVER_PID," | awk '{ n = split($5, a, ":"); print $1, "peer port", a[n] }' |
    sort | uniq -c | sort -rn
}
status_field() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$DROVER_PID/status" 2>/dev/null || echo 0; }

for _ in $(seq 100); do
  curl -s -o /dev/null --max-time 1 "$URL/" && break
  kill -0 "$DROVER_PID" 2>/dev/null || die "drover exited: $(tail -5 "$OUT/drover.log")"
  sleep 0.2
done
curl -s -o /dev/null --max-time 2 "$URL/" || die "the demo never answered on $URL"
log "drover pid $DROVER_PID on $URL (admin $ADMIN); results in $OUT"

TSV=$OUT/samples.tsv
printf 't_s\trss_kb\tfds\tthreads\tinstances\tdesired\tdescendants\tinflight\tclient_conns\tupstream_conns\tupstream_connects\tphase\n' >"$TSV"
echo idle >"$OUT/phase"
sample() {
  local m rss fds threads inst desired
  m=$(metrics)
  rss=$(status_field VmRSS)
  threads=$(status_field Threads)
  fds=$(find "/proc/$DROVER_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  inst=$(instances | wc -l)
  desired=$(msum drover_pool_desired_instances <<<"$m")
  printf '%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' $((SECONDS - T0)) "$rss" "$fds" "$threads" \
    "$inst" "$desired" "$(descendants "$DROVER_PID")" "$(msum drover_backend_inflight <<<"$m")" \
    "$(ss -Htn state established "( sport = :$PORT )" | wc -l)" "$(upstream_conns)" \
    "$(msum drover_upstream_connects_total <<<"$m")" "$(cat "$OUT/phase")" >>"$TSV"
}

# Baseline: idle, one instance.
sleep 3
sample
BASE=$(tail -1 "$TSV")
sockets >"$OUT/sockets-before.txt"

(
  while sleep "$SAMPLE_EVERY"; do sample; done
) &
PIDS+=($!)

printf 't_s\tpid\n' >"$OUT/kills.tsv"
(
  while sleep "$KILL_EVERY"; do
    mapfile -t inst < <(instances)
    ((${#inst[@]})) || continue
    victim=${inst[RANDOM % ${#inst[@]}]}
    kill -KILL "$victim" 2>/dev/null && printf '%d\t%s\n' $((SECONDS - T0)) "$victim" >>"$OUT/kills.tsv"
  done
) &
PIDS+=($!)

printf 'phase\tconns\tsecs\trequests\treq_per_s\tnon_2xx_3xx\tsocket_errors\tp99\n' >"$OUT/phases.tsv"
LOAD_T0=$SECONDS
n=0
while (((left = SECS - (SECONDS - LOAD_T0)) > 0)); do
  len=$((left < PHASE ? left : PHASE))
  if ((n % 2 == 0)); then name=heavy conns=$HEAVY; else name=light conns=$LIGHT; fi
  echo "$name" >"$OUT/phase"
  log "phase $n: $name, $conns connections for ${len}s"
  timeout $((len + 20)) wrk -t1 -c"$conns" -d"${len}s" --timeout 10s --latency "$URL$LOAD_PATH" \
    >"$OUT/wrk-$n.txt" 2>&1 || log "wrk exited $? (see $OUT/wrk-$n.txt)"
  reqs=$(awk '/requests in/ { print $1 }' "$OUT/wrk-$n.txt")
  rps=$(awk '/^Requests\/sec/ { print $2 }' "$OUT/wrk-$n.txt")
  non2xx=$(awk '/Non-2xx/ { print $NF }' "$OUT/wrk-$n.txt")
  sockerr=$(awk '/Socket errors/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' "$OUT/wrk-$n.txt")
  p99=$(awk '$1 == "99%" { print $2 }' "$OUT/wrk-$n.txt")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$conns" "$len" "${reqs:-0}" "${rps:-0}" \
    "${non2xx:-0}" "${sockerr:-0}" "${p99:--}" >>"$OUT/phases.tsv"
  n=$((n + 1))
done
echo settle >"$OUT/phase"
kill "${PIDS[1]}" 2>/dev/null || true   # the killer: none during settling
log "load done; waiting (up to 60 s) for the pool to shrink back to 1"
for _ in $(seq 60); do
  [[ $(instances | wc -l) == 1 && $(metrics | msum drover_pool_desired_instances) == 1 ]] && break
  sleep 1
done
sleep "$SAMPLE_EVERY"
kill "${PIDS[0]}" 2>/dev/null || true   # the sampler
echo idle >"$OUT/phase"
sample
FINAL=$(tail -1 "$TSV")
sockets >"$OUT/sockets-after.txt"
LAST_INSTANCES=$(instances | tr '\n' ' ')
STATS=$(metrics | grep -E '^drover_(requests_total|retries_total|scale_events_total)' || true)

kill -TERM "$DROVER_PID"
for _ in $(seq 100); do kill -0 "$DROVER_PID" 2>/dev/null || break; sleep 0.2; done
kill -0 "$DROVER_PID" 2>/dev/null && die "drover did not exit within 20 s of SIGTERM"
DROVER_PID=
left=""
for p in $LAST_INSTANCES; do kill -0 "$p" 2>/dev/null && left+=" $p"; done

# ---- report
field() { cut -f"$2" <<<"$1"; }
growth() { echo $(($(field "$FINAL" "$1") - $(field "$BASE" "$1"))); }
# Idle keep-alive connections to the remaining instance are fds drover may keep;
# every other fd must come back to the baseline.
fd_g=$(($(growth 3) - $(growth 10))) th_g=$(growth 4) rss_g=$(growth 2)
kills=$(($(wc -l <"$OUT/kills.tsv") - 1))
verdict=flat
((fd_g <= ${SOAK_MAX_FD_GROWTH:-16})) || verdict="LEAK: fds other than upstream connections +$fd_g"
((th_g <= ${SOAK_MAX_THREAD_GROWTH:-4})) || verdict="LEAK: threads +$th_g"
((rss_g <= ${SOAK_MAX_RSS_GROWTH_KB:-32768})) || verdict="LEAK: RSS +${rss_g} KiB"
[[ -z $left ]] || verdict="LEAK: instances left after drover exited:$left"

tsv_to_md() {
  awk -F'\t' 'NR == 1 { h = "|"; s = "|"; for (i = 1; i <= NF; i++) { h = h " " $i " |"; s = s "---|" }
    print h; print s; next } { r = "|"; for (i = 1; i <= NF; i++) r = r " " $i " |"; print r }' "$1"
}
{
  echo "## Soak $(date -u +%Y-%m-%d) — commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), ${SECS}s"
  echo
  echo "Demo pool (1..5, target 5 in flight), wrk on \`$LOAD_PATH\`: ${PHASE}s phases alternating"
  echo "$HEAVY and $LIGHT connections; one instance SIGKILLed every ${KILL_EVERY}s ($kills kills);"
  echo "drover sampled every ${SAMPLE_EVERY}s. Idle before → after the load: RSS $(field "$BASE" 2) → $(field "$FINAL" 2) KiB,"
  echo "fds $(field "$BASE" 3) → $(field "$FINAL" 3) (of which upstream connections $(field "$BASE" 10) → $(field "$FINAL" 10)), threads $(field "$BASE" 4) → $(field "$FINAL" 4). Verdict: **$verdict**."
  echo
  tsv_to_md "$OUT/phases.tsv"
  echo
  echo '```'
  echo "$STATS"
  echo
  echo "drover's TCP sockets after the load (count, state, peer port):"
  cat "$OUT/sockets-after.txt"
  echo '```'
  echo
  tsv_to_md "$TSV"
} >"$OUT/summary.md"

if python3 -c 'import matplotlib' 2>/dev/null; then
  python3 - "$TSV" "$OUT/soak.png" "$OUT/kills.tsv" <<'PY'
import csv, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
kills = [float(r["t_s"]) for r in csv.DictReader(open(sys.argv[3]), delimiter="\t")]
t = [float(r["t_s"]) for r in rows]
panels = [("rss_kb", "RSS (KiB)"), ("fds", "open fds"), ("threads", "threads"),
          ("instances", "instances"), ("inflight", "in flight"), ("client_conns", "client conns"),
          ("upstream_conns", "upstream conns")]
fig, axes = plt.subplots(len(panels), 1, sharex=True, figsize=(9, 12))
for ax, (key, label) in zip(axes, panels):
    ax.plot(t, [float(r[key] or 0) for r in rows], marker=".", lw=1)
    ax.set_ylabel(label)
    ax.set_ylim(bottom=0)
    for k in kills:
        ax.axvline(k, color="red", alpha=0.25, lw=0.8)
axes[-1].set_xlabel("seconds (red: an instance SIGKILLed)")
fig.suptitle("drover soak: demo pool 1..5 under alternating load")
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=80)
PY
  echo >>"$OUT/summary.md"
  echo "Plot: \`$(basename "$OUT")/soak.png\`" >>"$OUT/summary.md"
else
  log "no matplotlib: no plot (pip install matplotlib)"
fi
if [[ ${SOAK_APPEND:-0} == 1 ]]; then
  { echo; cat "$OUT/summary.md"; } >>bench/RESULTS.md
  log "appended to bench/RESULTS.md"
fi
cat "$OUT/summary.md"
log "verdict: $verdict"
[[ $verdict == flat ]]
