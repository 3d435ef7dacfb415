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
target/debug/server user add --email foresight@dealdesk.test --password foresight-demo-pass >/dev/null
target/debug/server usage seed --records 200 --days 7 --user foresight@dealdesk.test >/dev/null

target/debug/server >"$workdir/server.log" 2>&1 &
server_pid=$!
cleanup() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  rm -rf "$workdir"
}
trap cleanup EXIT

for _ in $(seq 1 60); do
  curl -fsS "$BASE_URL/healthz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$workdir/server.log"; echo "server exited" >&2; exit 1; }
  sleep 0.5
done
curl -fsS "$BASE_URL/healthz" >/dev/null || { cat "$workdir/server.log"; exit 1; }

cd end2end
if ! npx playwright test "$@"; then
  echo "---- server log ----"; tail -n 80 "$workdir/server.log"
  exit 1
fi
