#!/usr/bin/env bash
# The fuzz step: builds every cargo-fuzz target, runs each for a bounded time
# from the committed seeds, prints executions per target, and fails on a crash
# (printing the reproducer and the command that replays it).
#
#   FUZZ_BUDGET      seconds for the whole step, build included (default 300);
#                    what the build leaves is shared by the targets
#   FUZZ_SECONDS     most seconds per target (default 40); at least 10 each
#   FUZZ_TARGET_DIR  cargo target dir (default fuzz/target); a dir kept between
#                    runs makes the build incremental and the corpus grow
set -euo pipefail
cd "$(dirname "$0")"
start=$SECONDS
budget=${FUZZ_BUDGET:-300}
per_max=${FUZZ_SECONDS:-40}
target_dir=${FUZZ_TARGET_DIR:-target}
targets=(request_head config duration admin_request sticky_cookie route_rules h1_codec upstream_response upstream_h2 hpack h2_server)
# One build configuration for build and run (a different one rebuilds everything):
# no sanitizer (drover forbids unsafe code), debug assertions and overflow checks on.
flags=(-s none -a --target-dir "$target_dir")

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

echo "== fuzz build"
cargo +nightly fuzz build "${flags[@]}"
built=$((SECONDS - start))

# Two targets at a time (two cores); what the budget leaves after the build,
# less a margin for start-up, split over the rounds.
rounds=$(((${#targets[@]} + 1) / 2))
per=$(((budget - built - 20) / rounds))
((per > per_max)) && per=$per_max
((per < 10)) && per=10
echo "== fuzzing ${#targets[@]} targets for ${per}s each (build took ${built}s)"

logs=$(mktemp -d)
run_one() {
  local t=$1 work="$target_dir/fuzz-corpus/$1"
  mkdir -p "$work" "artifacts/$t"
  # New inputs go to the scratch corpus; the committed seeds are read only.
  cargo +nightly fuzz run "${flags[@]}" "$t" "$work" "corpus/$t" -- \
    -max_total_time="$per" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
    -print_final_stats=1 >"$logs/$t.log" 2>&1
}

failed=()
for ((i = 0; i < ${#targets[@]}; i += 2)); do
  pids=()
  for t in "${targets[@]:i:2}"; do
    run_one "$t" &
    pids+=("$!:$t")
  done
  for p in "${pids[@]}"; do
    if ! wait "${p%%:*}"; then
      failed+=("${p#*:}")
    fi
  done
done

printf '%-15s %12s %8s\n' target executions exec/s
for t in "${targets[@]}"; do
  runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$logs/$t.log" | grep -Eo '[0-9]+$' || echo "?")
  speed=$(grep -Eo 'stat::average_exec_per_sec: *[0-9]+' "$logs/$t.log" | grep -Eo '[0-9]+$' || echo "?")
  printf '%-15s %12s %8s\n' "$t" "$runs" "$speed"
done
echo "fuzz step: $((SECONDS - start))s"

if ((${#failed[@]})); then
  for t in "${failed[@]}"; do
    echo "== CRASH in fuzz target $t"
    grep -E -A1 'panicked at|ERROR: libFuzzer|Test unit written to' "$logs/$t.log" || tail -n 40 "$logs/$t.log"
    for f in $(grep -Eo 'Test unit written to [^ ]+' "$logs/$t.log" | awk '{print $NF}'); do
      echo "reproducer: $f"
      echo "replay:     (cd fuzz && cargo +nightly fuzz run ${flags[*]} $t $f)"
    done
  done
  exit 1
fi
