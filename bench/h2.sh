#!/usr/bin/env bash
# h2c side by side: drover vs HAProxy vs nginx proxying HTTP/2 (prior knowledge) to two
# h2c backends, loaded with h2load (Debian's nghttp2-client), peers alternated in each
# round (the order rotates every round), medians reported. Everything on 127.0.0.1;
# only processes started here are stopped, by pid.
#
#   backends : one nginx, 2 workers, h2c on 127.0.0.1:18181 and :18182;
#              /small -> 100-byte file, /64k -> 65536-byte file,
#              POST /pkg.Svc/Call -> a gRPC unary answer (content-type application/grpc,
#              a 10-byte length-prefixed message, trailers grpc-status 0 / grpc-message ok)
#   bodies   : small, 64k (GET); grpc (POST of a length-prefixed message with
#              content-type: application/grpc and te: trailers, as a gRPC client sends)
#   peers    : direct  (h2load -> backend, the reference)
#              haproxy 127.0.0.1:18191 (nbthread 2; bind proto h2, server proto h2, http-reuse always)
#              nginx   127.0.0.1:18190 (grpc_pass: nginx's only HTTP/2 upstream, keepalive 512)
#              drover  127.0.0.1:18192 (pool protocol = "h2c"; target/release/drover)
#              drover_b 127.0.0.1:18193 (the same config on DROVER_BIN_B: an A/B of two
#                      builds in one alternated run)
#   check    : before the load, every peer must answer every body with 200, the right
#              length and, for grpc, the grpc-status 0 trailer (nghttp -v); else the run stops
#   load     : h2load -t1 -c C -m M -D DUR per cell; req/s from h2load, us/req = the peer's CPU
#              time (all its processes, user + system; from the end of h2load's 1 s warm-up)
#              over the requests done in the -D window; p50/p99 from its
#              per-request log; "bad" = responses not 2xx or of the wrong size (from the
#              log and h2load's byte count). Streams cut at the end of -D are not counted.
#
# Knobs (env): DUR=10 REPS=3 CONNS="16 64" STREAMS=10 BODIES="small 64k grpc"
#   PEERS="direct haproxy nginx drover" DROVER_BIN=target/release/drover DROVER_BIN_B=
#   APPEND=1 (append the table to bench/RESULTS.md)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-10}
REPS=${REPS:-3}
CONNS=${CONNS:-"16 64"}
STREAMS=${STREAMS:-10}
BODIES=${BODIES:-"small 64k grpc"}
PEERS=${PEERS:-"direct haproxy nginx drover"}
DROVER_BIN=${DROVER_BIN:-$PWD/target/release/drover}
DROVER_BIN_B=${DROVER_BIN_B:-}
for c in nginx haproxy h2load nghttp; do
  command -v $c >/dev/null || { echo "bench/h2.sh: $c missing (apt-get install nginx haproxy nghttp2-client)"; exit 1; }
done
[[ " $PEERS " != *" drover "* || -x $DROVER_BIN ]] || { echo "bench/h2.sh: build drover first: cargo build --release"; exit 1; }
[[ " $PEERS " != *" drover_b "* || -x $DROVER_BIN_B ]] || { echo "bench/h2.sh: peer drover_b needs DROVER_BIN_B (an executable)"; exit 1; }

run=$(mktemp -d -t h2-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true; done
  rm -rf "$run"
}
trap cleanup EXIT
declare -A group # peer name -> process group id (the setsid'd process)
start() { # start NAME CMD...: in its own process group
  local name=$1
  shift
  setsid "$@" >"$run/$name.out" 2>&1 &
  pids+=("$!")
  group[$name]=$!
}
# CPU ticks (user + system, 1/100 s) used so far by every process of a group we started.
ticks() { # ticks PGID
  local t=0 p
  for p in $(ps -o pid= -g "$1" 2>/dev/null); do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$t"
}
wait_port() {
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done
  echo "port $1 never opened"; cat "$run"/*.out; exit 1
}

# nginx's workers run as an unprivileged user: they must read the files (mktemp -d makes
# the directory 0700, and every answer was a 403 page in the first run of this script).
chmod 755 "$run"
mkdir -p "$run/www" "$run/tmp"
head -c 100 /dev/zero | tr '\0' 'a' >"$run/www/small"
head -c 65536 /dev/zero | tr '\0' 'b' >"$run/www/64k"
# gRPC frames: flag 0, 4-byte big-endian length 5, then a protobuf message (field 1 = "abc").
mkdir -p "$run/www/pkg.Svc"
printf '\x00\x00\x00\x00\x05\x0a\x03abc' >"$run/www/pkg.Svc/Call"
printf '\x00\x00\x00\x00\x05\x0a\x03xyz' >"$run/grpc-request"
declare -A size=([small]=100 [64k]=65536 [grpc]=10)

cat >"$run/backend.conf" <<EOF
worker_processes 2;
daemon off;
pid $run/backend.pid;
error_log $run/backend.err;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $run/tmp; proxy_temp_path $run/tmp; fastcgi_temp_path $run/tmp;
  uwsgi_temp_path $run/tmp; scgi_temp_path $run/tmp;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:18181 http2;
    listen 127.0.0.1:18182 http2;
    root $run/www;
    # A unary gRPC answer: the static file, served to POST (405 -> 200), with trailers.
    location = /pkg.Svc/Call {
      default_type application/grpc;
      add_trailer grpc-status 0 always;
      add_trailer grpc-message ok always;
      error_page 405 =200 \$uri;
    }
  }
}
EOF
cat >"$run/nginx.conf" <<EOF
worker_processes 2;
daemon off;
pid $run/nginx.pid;
error_log $run/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $run/tmp; proxy_temp_path $run/tmp; fastcgi_temp_path $run/tmp;
  uwsgi_temp_path $run/tmp; scgi_temp_path $run/tmp;
  # nginx closes a client connection after keepalive_requests (default 1000) requests, and
  # h2load does not reconnect: every nginx cell was 0 req/s or all-bad until this was raised.
  keepalive_requests 1000000;
  # max_fails=0: one "upstream sent frame for unknown stream" (nginx's grpc module on the
  # backend's early-answered gRPC stream) must not take a backend out for 10 s.
  upstream be { server 127.0.0.1:18181 max_fails=0; server 127.0.0.1:18182 max_fails=0; keepalive 512; keepalive_requests 1000000; }
  server { listen 127.0.0.1:18190 http2; location / { grpc_pass grpc://be; } }
}
EOF
cat >"$run/haproxy.cfg" <<EOF
global
  nbthread 2
  maxconn 8000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend fe
  bind 127.0.0.1:18191 proto h2
  default_backend be
backend be
  balance roundrobin
  server s1 127.0.0.1:18181 proto h2
  server s2 127.0.0.1:18182 proto h2
EOF
cat >"$run/drover.toml" <<EOF
[server]
listen = ["127.0.0.1:18192"]
[admin]
listen = "127.0.0.1:0"
[log]
access = false
[pools.bench]
protocol = "h2c"
backends = ["127.0.0.1:18181", "127.0.0.1:18182"]
EOF
sed 's/127.0.0.1:18192/127.0.0.1:18193/' "$run/drover.toml" >"$run/drover_b.toml"

start backend nginx -c "$run/backend.conf" -e "$run/backend.err"
wait_port 18181
declare -A port=([direct]=18181 [nginx]=18190 [haproxy]=18191 [drover]=18192 [drover_b]=18193)
for p in $PEERS; do
  case $p in
    nginx) start nginx nginx -c "$run/nginx.conf" -e "$run/nginx.err" ;;
    haproxy) start haproxy haproxy -f "$run/haproxy.cfg" ;;
    drover) start drover "$DROVER_BIN" -q --log-format json run -c "$run/drover.toml" ;;
    drover_b) start drover_b "$DROVER_BIN_B" -q --log-format json run -c "$run/drover_b.toml" ;;
    direct) ;;
    *) echo "unknown peer $p"; exit 1 ;;
  esac
  wait_port "${port[$p]}"
done

# The h2load / nghttp arguments for a body, in the array `req`.
target() { # target PEER BODY
  local url="http://127.0.0.1:${port[$1]}"
  case $2 in
    grpc) req=("$url/pkg.Svc/Call" -d "$run/grpc-request" -H "content-type: application/grpc" -H "te: trailers") ;;
    *) req=("$url/$2") ;;
  esac
}

# Every peer answers every body right before any load runs.
for p in $PEERS; do
  for body in $BODIES; do
    target "$p" "$body"
    out=$(nghttp -v "${req[@]}" 2>&1 | tr -d '\000' || true)
    status=$( (grep -a -m1 -o ':status: [0-9]*' <<<"$out" || true) | awk '{print $2}')
    got=$( (grep -a -o 'recv DATA frame <length=[0-9]*' <<<"$out" || true) | awk -F= '{s+=$2} END {print s+0}')
    ok=1
    [[ $status == 200 && $got == "${size[$body]}" ]] || ok=0
    [[ $body != grpc ]] || grep -aq 'grpc-status: 0' <<<"$out" || ok=0
    if [[ $ok == 0 ]]; then
      echo "bench/h2.sh: $p /$body answered status ${status:-none} with $got body bytes (want 200, ${size[$body]}):"
      tail -n 30 <<<"$out"
      cat "$run"/*.err 2>/dev/null | tail -n 20
      exit 1
    fi
  done
done

# One cell: prints "rps p50_ms p99_ms bad".
cell() {
  local p=$1 body=$2 c=$3 log="$run/req.log"
  rm -f "$log"
  local out
  target "$p" "$body"
  # The peer's CPU ticks once h2load's 1 s warm-up is over (sampled aside).
  rm -f "$run/t0"
  [[ -n ${group[$p]:-} ]] && (sleep 1 && ticks "${group[$p]}" >"$run/t0") &
  out=$(h2load -t1 -c "$c" -m "$STREAMS" -D "$DUR" --warm-up-time=1 --log-file="$log" "${req[@]}" 2>&1)
  wait
  # The peer's CPU per request (µs) over the measured -D window.
  local us=nan
  if [[ -s $run/t0 ]]; then
    local done_n t0
    t0=$(cat "$run/t0")
    done_n=$(sed -n 's/^requests: .* \([0-9]*\) done.*/\1/p' <<<"$out")
    us=$(awk -v t=$(($(ticks "${group[$p]}") - t0)) -v n="${done_n:-0}" 'BEGIN { if (n > 0) printf "%.1f", t * 10000 / n; else print "nan" }')
  fi
  local rps succeeded data
  rps=$(sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' <<<"$out")
  succeeded=$(sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p' <<<"$out")
  data=$(sed -n 's/^traffic: .*(\([0-9]*\)) data.*/\1/p' <<<"$out")
  # log: start_us status duration_us; status 0 or -1 = a stream cut at the end of -D (not counted)
  read -r p50 p99 non2xx < <(awk '$2 > 0' "$log" | sort -n -k3 | awk '{a[NR]=$3; if ($2 < 200 || $2 > 299) bad++} END {
    if (NR == 0) { print "nan nan 0"; exit }
    i = int(NR * 0.99) + 1; if (i > NR) i = NR
    printf "%.2f %.2f %d\n", a[int(NR * 0.50) + 1] / 1000, a[i] / 1000, bad }')
  # Responses short of their size (data counts every byte received, cut streams too).
  local short=0
  if [[ -n $succeeded && -n $data && $succeeded -gt 0 ]]; then
    short=$(awk -v d="$data" -v n="$succeeded" -v s="${size[$body]}" 'BEGIN {
      m = n - int(d / s); print (m > 0 ? m : 0) }')
  fi
  if ((non2xx + short > 0)); then
    echo "  $p /$body c=$c: $non2xx not 2xx ($(awk '$2 > 0 {print $2}' "$log" | sort | uniq -c | tr -s ' \n' ' ')), $short short of ${size[$body]} bytes" >&2
  fi
  echo "${rps:-0} $p50 $p99 $((non2xx + short)) $us"
}

declare -A results
peers=($PEERS)
for rep in $(seq "$REPS"); do
  for body in $BODIES; do
    for c in $CONNS; do
      # Rotate the order each round, so that no peer always runs first or last.
      for k in "${!peers[@]}"; do
        p=${peers[$(((k + rep - 1) % ${#peers[@]}))]}
        r=$(cell "$p" "$body" "$c")
        results["$body $c $p"]+="$r;"
        echo "round $rep $body c=$c m=$STREAMS $p: $r" >&2
      done
    done
  done
done

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
table=$(
  echo "h2c, h2load -t1 -m $STREAMS -D ${DUR}s, median of $REPS rounds (peers alternated); p50/p99 in ms"
  printf '%-6s %-5s %-8s %10s %8s %8s %7s %8s\n' body conns peer req/s p50 p99 bad us/req
  for body in $BODIES; do
    for c in $CONNS; do
      for p in $PEERS; do
        rows=$(tr ';' '\n' <<<"${results["$body $c $p"]}" | sed '/^$/d')
        rps=$(awk '{print $1}' <<<"$rows" | median)
        p50=$(awk '{print $2}' <<<"$rows" | median)
        p99=$(awk '{print $3}' <<<"$rows" | median)
        err=$(awk '{s+=$4} END {print s}' <<<"$rows")
        us=$(awk '{print $5}' <<<"$rows" | median)
        printf '%-6s %-5s %-8s %10.0f %8s %8s %7s %8s\n' "$body" "$c" "$p" "$rps" "$p50" "$p99" "$err" "${us:-nan}"
      done
    done
  done
  # drover over each other proxy: req/s ratio (goal >= 1.1), p99 ratio (goal <= 1) and
  # CPU per request ratio.
  if [[ " $PEERS " == *" drover "* ]]; then
    echo
    printf '%-6s %-5s %-8s %12s %12s %12s\n' body conns vs 'req/s ratio' 'p99 ratio' 'us/req ratio'
    for body in $BODIES; do
      for c in $CONNS; do
        for p in haproxy nginx drover_b; do
          [[ " $PEERS " == *" $p "* ]] || continue
          ratio() { # ratio FIELD: median of drover / median of $p
            local a b
            a=$(tr ';' '\n' <<<"${results["$body $c drover"]}" | sed '/^$/d' | awk -v f="$1" '{print $f}' | median)
            b=$(tr ';' '\n' <<<"${results["$body $c $p"]}" | sed '/^$/d' | awk -v f="$1" '{print $f}' | median)
            awk -v a="$a" -v b="$b" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'
          }
          printf '%-6s %-5s %-8s %12s %12s %12s\n' "$body" "$c" "$p" "$(ratio 1)" "$(ratio 3)" "$(ratio 5)"
        done
      done
    done
  fi
)
echo "$table"
if [[ ${APPEND:-0} == 1 ]]; then
  {
    echo
    echo "## $(date -u +%Y-%m-%d) — h2c (bench/h2.sh), commit $(git rev-parse --short HEAD), plain release build"
    echo
    echo '```'
    echo "$table"
    echo '```'
  } >>bench/RESULTS.md
fi
