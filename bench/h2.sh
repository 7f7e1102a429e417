#!/usr/bin/env bash
# h2c side by side: drover vs HAProxy vs nginx proxying HTTP/2 (prior knowledge) to two
# h2c backends, loaded with h2load (Debian's nghttp2-client), peers alternated in each
# round, medians reported. Everything on 127.0.0.1; only processes started here are
# stopped, by pid.
#
#   backends : one nginx, 2 workers, h2c on 127.0.0.1:18181 and :18182;
#              /small -> 100-byte file, /64k -> 65536-byte file
#   peers    : direct  (h2load -> backend, the reference)
#              haproxy 127.0.0.1:18191 (nbthread 2; bind proto h2, server proto h2, http-reuse always)
#              nginx   127.0.0.1:18190 (grpc_pass: nginx's only HTTP/2 upstream, keepalive 512)
#              drover  127.0.0.1:18192 (pool protocol = "h2c"; target/release/drover)
#   load     : h2load -t1 -c C -m M -D DUR per cell; req/s from h2load, p50/p99 from its
#              per-request log
#
# Knobs (env): DUR=10 REPS=3 CONNS="16 64" STREAMS=10 BODIES="small 64k"
#   PEERS="direct haproxy nginx drover" DROVER_BIN=target/release/drover
#   APPEND=1 (append the table to bench/RESULTS.md)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-10}
REPS=${REPS:-3}
CONNS=${CONNS:-"16 64"}
STREAMS=${STREAMS:-10}
BODIES=${BODIES:-"small 64k"}
PEERS=${PEERS:-"direct haproxy nginx drover"}
DROVER_BIN=${DROVER_BIN:-$PWD/target/release/drover}
for c in nginx haproxy h2load; do
  command -v $c >/dev/null || { echo "bench/h2.sh: $c missing (apt-get install nginx haproxy nghttp2-client)"; exit 1; }
done
[[ " $PEERS " != *" drover "* || -x $DROVER_BIN ]] || { echo "bench/h2.sh: build drover first: cargo build --release"; exit 1; }

run=$(mktemp -d -t h2-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true; done
  rm -rf "$run"
}
trap cleanup EXIT
start() { # start NAME CMD...: in its own process group
  local name=$1
  shift
  setsid "$@" >"$run/$name.out" 2>&1 &
  pids+=("$!")
}
wait_port() {
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done
  echo "port $1 never opened"; cat "$run"/*.out; exit 1
}

mkdir -p "$run/www" "$run/tmp"
head -c 100 /dev/zero | tr '\0' 'a' >"$run/www/small"
head -c 65536 /dev/zero | tr '\0' 'b' >"$run/www/64k"

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
  server { listen 127.0.0.1:18181 http2; listen 127.0.0.1:18182 http2; root $run/www; }
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
  upstream be { server 127.0.0.1:18181; server 127.0.0.1:18182; keepalive 512; }
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

start backend nginx -c "$run/backend.conf" -e "$run/backend.err"
wait_port 18181
declare -A port=([direct]=18181 [nginx]=18190 [haproxy]=18191 [drover]=18192)
for p in $PEERS; do
  case $p in
    nginx) start nginx nginx -c "$run/nginx.conf" -e "$run/nginx.err" ;;
    haproxy) start haproxy haproxy -f "$run/haproxy.cfg" ;;
    drover) start drover "$DROVER_BIN" -q --log-format json run -c "$run/drover.toml" ;;
    direct) ;;
    *) echo "unknown peer $p"; exit 1 ;;
  esac
  wait_port "${port[$p]}"
done

# One cell: prints "rps p50_ms p99_ms errors".
cell() {
  local p=$1 body=$2 c=$3 log="$run/req.log"
  rm -f "$log"
  local out
  out=$(h2load -t1 -c "$c" -m "$STREAMS" -D "$DUR" --warm-up-time=1 --log-file="$log" \
    "http://127.0.0.1:${port[$p]}/$body" 2>&1)
  local rps errors
  rps=$(sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' <<<"$out")
  errors=$(sed -n 's/^requests: .* \([0-9]*\) errored.*/\1/p' <<<"$out")
  # log: start_us status duration_us
  read -r p50 p99 < <(awk '{print $3}' "$log" | sort -n | awk '{a[NR]=$1} END {
    if (NR == 0) { print "nan nan"; exit }
    i = int(NR * 0.99) + 1; if (i > NR) i = NR
    printf "%.2f %.2f\n", a[int(NR * 0.50) + 1] / 1000, a[i] / 1000 }')
  echo "${rps:-0} $p50 $p99 ${errors:-?}"
}

declare -A results
for rep in $(seq "$REPS"); do
  for body in $BODIES; do
    for c in $CONNS; do
      for p in $PEERS; do
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
  printf '%-6s %-5s %-8s %10s %8s %8s %7s\n' body conns peer req/s p50 p99 errors
  for body in $BODIES; do
    for c in $CONNS; do
      for p in $PEERS; do
        rows=$(tr ';' '\n' <<<"${results["$body $c $p"]}" | sed '/^$/d')
        rps=$(awk '{print $1}' <<<"$rows" | median)
        p50=$(awk '{print $2}' <<<"$rows" | median)
        p99=$(awk '{print $3}' <<<"$rows" | median)
        err=$(awk '{s+=$4} END {print s}' <<<"$rows")
        printf '%-6s %-5s %-8s %10.0f %8s %8s %7s\n' "$body" "$c" "$p" "$rps" "$p50" "$p99" "$err"
      done
    done
  done
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
