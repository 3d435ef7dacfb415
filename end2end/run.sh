#!/usr/bin/env bash
# Runs the Playwright suite against the debug build (cargo leptos build) on a free port
# with a throw-away SQLite database and the demo accounts, then stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
workdir=$(mktemp -d)
export DATABASE_URL="sqlite://$workdir/e2e.db?mode=rwc"
export LEPTOS_OUTPUT_NAME=dealdesk LEPTOS_SITE_ROOT=target/site LEPTOS_SITE_PKG_DIR=pkg
export LEPTOS_SITE_ADDR="127.0.0.1:$port" LEPTOS_ENV=DEV
export APP_DEMO__SEED=true
export BASE_URL="http://127.0.0.1:$port"

# A user with a tiny daily budget, for the daily-limit test, and one whose monthly
# budget the limits test sets.
target/debug/server user add --email tiny@dealdesk.test --password tiny-demo-pass --daily-budget 100 >/dev/null
target/debug/server user add --email limits@dealdesk.test --password limits-demo-pass >/dev/null
# An analyst of their own for the streaming tests (their calls count against their own
# per-minute rate limit).
target/debug/server user add --email stream@dealdesk.test --password stream-demo-pass >/dev/null
# An analyst with a week of history, for model choice, alerts and the projection: enough
# that this month's part of it is over a dollar even on the 1st (the week then lies
# mostly in the month before), so rounding to cents stays far below a percent.
# Its daily token budget is far above a day of that history, so the monthly budget the
# test sets is always the one that chooses the model (how much of the seeded week falls
# on today varies from run to run; once, 52% of the default 500,000 did).
target/debug/server user add --email foresight@dealdesk.test --password foresight-demo-pass --daily-budget 100000000 >/dev/null
target/debug/server usage seed --records 200 --days 7 --user foresight@dealdesk.test >/dev/null

target/debug/server >"$workdir/server.log" 2>&1 &
pids=($!)
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  rm -rf "$workdir"
}
trap cleanup EXIT

wait_healthy() { # url log pid
  for _ in $(seq 1 60); do
    curl -fsS "$1/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$3" 2>/dev/null || { cat "$2"; echo "server exited" >&2; exit 1; }
    sleep 0.5
  done
  curl -fsS "$1/healthz" >/dev/null || { cat "$2"; exit 1; }
}
wait_healthy "$BASE_URL" "$workdir/server.log" "${pids[0]}"

# A second instance with an API key, talking to bench-load's fake Claude (loopback), on a
# database of its own: what the browser does only when Claude is configured (its exact
# token count). Its address goes to the tests in ONLINE_URL.
target/debug/bench-load fake-claude >"$workdir/fake.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 60); do grep -q "listening on" "$workdir/fake.log" && break; sleep 0.2; done
claude=$(sed -n 's/^listening on //p' "$workdir/fake.log")
[ -n "$claude" ] || { cat "$workdir/fake.log"; echo "the fake Claude did not start" >&2; exit 1; }
online_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export ONLINE_URL="http://127.0.0.1:$online_port"
DATABASE_URL="sqlite://$workdir/online.db?mode=rwc" LEPTOS_SITE_ADDR="127.0.0.1:$online_port" \
  ANTHROPIC_API_KEY=e2e-fake-key ANTHROPIC_BASE_URL="http://$claude" \
  target/debug/server >"$workdir/online.log" 2>&1 &
pids+=($!)
wait_healthy "$ONLINE_URL" "$workdir/online.log" "${pids[-1]}"

cd end2end
if ! npx playwright test "$@"; then
  echo "---- server log ----"; tail -n 80 "$workdir/server.log"
  echo "---- online server log ----"; tail -n 40 "$workdir/online.log"
  exit 1
fi
