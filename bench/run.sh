#!/usr/bin/env bash
# make bench, on SQLite and on PostgreSQL (release build), in one run:
# 1. load: 50 signed-in analysts send budgeted chat messages at fixed arrival rates
#    (BENCH_RATES, default 25,250,500,1000 a second, BENCH_SECONDS each) against a fake
#    Claude that answers at once: latency percentiles, calls shed (503 overloaded),
#    errors, CPU per call, peak memory;
# 2. the dashboard: seed RECORDS (default 10,000,000) synthetic usage records, check that
#    the aggregates and counters agree with them, time every view of /admin/tokens;
# 3. admission: the cost of admitting a call on a deal with 10,000 and then
#    ADMISSION_RECORDS (default 1,000,000) records of history (it reads running
#    counters, so it must not grow).
# Every figure goes to bench/last-run.tsv, compared first with the previous run's
# (a figure 25% worse is named as a regression and the run fails at the end).
# BENCH_STEPS (default load,dashboard,admission) runs some of the steps: their figures
# are compared with the baseline, which only a run of every step replaces.
# `make profile` (BENCH_STEPS=profile) instead samples the release server with perf while
# it takes PROFILE_RATE (default 250) calls a second for PROFILE_SECONDS (10), and
# prints where its CPU goes per call (bench/profile.py); the folded stacks, for a flame
# graph, go to target/profile/.
set -euo pipefail
cd "$(dirname "$0")/.."
records=${RECORDS:-10000000}
admission_records=${ADMISSION_RECORDS:-1000000}
rates=${BENCH_RATES:-25,250,500,1000}
seconds=${BENCH_SECONDS:-10}
steps=${BENCH_STEPS:-load,dashboard,admission}
for step in ${steps//,/ }; do
  case "$step" in load|dashboard|admission|profile) ;; *) echo "BENCH_STEPS: unknown step '$step' (load, dashboard, admission, profile)" >&2; exit 2 ;; esac
done
profile_rate=${PROFILE_RATE:-250}
profile_seconds=${PROFILE_SECONDS:-10}
[ "$profile_seconds" -ge 4 ] 2>/dev/null || { echo "PROFILE_SECONDS: a whole number of seconds, at least 4" >&2; exit 2; }
runs() { [[ ",$steps," == *",$1,"* ]]; }
bin=target/release/server
load=target/release/bench-load
workdir=$(mktemp -d)
results="$workdir/results.tsv"
baseline=bench/last-run.tsv
pg_admin="postgres://postgres@127.0.0.1:5432/postgres"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$workdir"
  # This run's databases (named with its process id; see database()).
  for db in $(psql "$pg_admin" -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'dealdesk_bench_%_$$'" 2>/dev/null); do
    psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT
export DEALDESK_CONFIG="$PWD/Leptos.toml"
export BENCH_RECORD="$results"
# The tools' own logs: warnings only, and not sqlx's slow-statement notes (they print
# whole bulk inserts); the servers under load log as operators run them, to a file.
export RUST_LOG=${RUST_LOG:-warn,sqlx=error}

database() { # engine name -> DATABASE_URL of a fresh database
  case "$1" in
    sqlite) echo "sqlite://$workdir/$2.db?mode=rwc" ;;
    postgres)
      local db="dealdesk_bench_$2_$$"
      psql "$pg_admin" -qc "CREATE DATABASE $db" >/dev/null
      echo "postgres://postgres@127.0.0.1:5432/$db" ;;
  esac
}

wait_for() { # file pattern [tenths of a second, 100]: waits until the file holds the pattern
  for _ in $(seq 1 "${3:-100}"); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for '$2' in $1:" >&2; cat "$1" >&2; exit 1
}

# The load: a fake Claude, the release server on a fresh database, and the generator;
# with `profile`, one rate (PROFILE_RATE) while perf samples the server.
load_bench() { # engine [profile]
  local engine=$1 profile=${2:-} url port=3199 password=bench-load-pass
  export DATABASE_URL
  DATABASE_URL=$(database "$engine" "${profile:-load}")
  for i in $(seq -w 0 49); do "$bin" user add --email "load-$i@bench.dealdesk.test" --password "$password" >/dev/null; done
  "$load" fake-claude > "$workdir/fake.log" 2>&1 & local fake=$!; pids+=($fake)
  wait_for "$workdir/fake.log" "listening on"
  local claude; claude=$(sed -n 's/^listening on //p' "$workdir/fake.log")
  # No limits in the way: the bench measures the path, not the refusals.
  env ANTHROPIC_API_KEY=bench ANTHROPIC_BASE_URL="http://$claude" LEPTOS_SITE_ADDR="127.0.0.1:$port" \
    APP_SESSION__SECURE_COOKIE=false APP_CHAT__COOLDOWN_SECONDS=0 APP_CLAUDE__MAX_RETRIES=0 \
    APP_LIMITS__USER_REQUESTS_PER_MINUTE=0 APP_LIMITS__USER_REQUESTS_PER_DAY=0 APP_LIMITS__USER_MONTHLY_USD=0 \
    APP_BUDGET__USER_DAILY_TOKENS=1000000000000 APP_BUDGET__DEAL_TOKENS=1000000000000 APP_DEMO__SEED=false \
    RUST_LOG=info,sqlx=warn,tower_sessions=warn "$bin" > "$workdir/server-$engine.log" 2>&1 & local server=$!; pids+=($server)
  url="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do curl -sf "$url/healthz" >/dev/null && break; sleep 0.1; done
  if [ -z "$profile" ]; then
    "$load" run --url "$url" --password "$password" --rates "$rates" --seconds "$seconds" \
      --server-pid "$server" --label "$engine" --record "$results"
  else
    # Sampled from 1 s after the rate starts (once the analysts are signed in and the
    # warm-up is over) to 1 s before it ends, with DWARF call stacks (release builds
    # keep no frame pointers).
    local out=target/profile progress="$workdir/progress-$engine.log" sample=$(( profile_seconds - 2 ))
    mkdir -p "$out"
    ( wait_for "$progress" "$profile_rate/s started" 600; sleep 1
      perf record -q -F 999 --call-graph dwarf,32768 -p "$server" -o "$workdir/perf.data" -- sleep "$sample" ) \
      > "$workdir/perf.log" 2>&1 & local perf=$!
    "$load" run --url "$url" --password "$password" --rates "$profile_rate" --seconds "$profile_seconds" \
      --server-pid "$server" --label "$engine" --record "$workdir/profile-figures.tsv" 2> >(tee "$progress" >&2)
    wait "$perf" || { cat "$workdir/perf.log" >&2; exit 1; }
    perf script -i "$workdir/perf.data" --no-inline -F comm,ip,sym 2>/dev/null \
      | python3 bench/profile.py --rate "$profile_rate" --seconds "$sample" --folded "$out/$engine.folded"
  fi
  kill "$server" "$fake"; wait "$server" 2>/dev/null || true
}

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for engine in sqlite postgres; do
  if runs profile; then
    echo "== $engine: where the server's CPU goes at $profile_rate calls a second"
    load_bench "$engine" profile
  fi

  if runs load; then
    echo "== $engine: load"
    load_bench "$engine"
  fi

  export DATABASE_URL
  if runs dashboard; then
    echo "== $engine: dashboard, $records records"
    DATABASE_URL=$(database "$engine" dash)
    "$bin" usage seed --records "$records"
    "$bin" usage check
    "$bin" usage bench --runs 10
  fi

  if runs admission; then
    echo "== $engine: admission against one deal's history"
    DATABASE_URL=$(database "$engine" adm)
    "$bin" usage seed --records 10000 --one-deal
    "$bin" usage bench-admission --runs 500
    "$bin" usage seed --records $(( admission_records - 10000 )) --one-deal
    "$bin" usage check
    "$bin" usage bench-admission --runs 500
  fi
done

[ "$steps" = profile ] && exit 0
# The bundle `make bench` just built in release mode (a partial run may find a debug one):
# the main module, the heaviest page's load (main + its chunks), every file.
if [ -f target/site/pkg/__wasm_split_manifest.json ] && [ "$steps" = load,dashboard,admission ]; then
  echo "== browser bundle, gzipped: each page's load (main module + the page's chunks)"
  python3 bench/wasm_size.py target/site/pkg >> "$results"
fi
echo "machine after: load average $(cut -d' ' -f1-3 /proc/loadavg)"

status=0
if [ -f "$baseline" ]; then
  echo "== against the previous run ($baseline)"
  "$load" compare "$baseline" "$results" || status=$?
fi
if [ "$steps" = load,dashboard,admission ]; then
  cp "$results" "$baseline"
else
  echo "(steps $steps only: $baseline is kept; a run of every step replaces it)"
fi
exit $status
