#!/usr/bin/env bash
# The dashboard benchmark: seeds RECORDS (default 1,000,000) synthetic usage records into
# a fresh SQLite file and a fresh PostgreSQL database, checks that the daily aggregates
# agree with the records, and times the dashboard's queries on each. Release build.
set -euo pipefail
cd "$(dirname "$0")/.."
records=${RECORDS:-1000000}
bin=target/release/server
workdir=$(mktemp -d)
pg_db="dealdesk_bench_$$"
pg_admin="postgres://postgres@127.0.0.1:5432/postgres"
cleanup() {
  rm -rf "$workdir"
  psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT
export DEALDESK_CONFIG="$PWD/Leptos.toml"

echo "== SQLite, $records records"
export DATABASE_URL="sqlite://$workdir/bench.db?mode=rwc"
"$bin" usage seed --records "$records"
"$bin" usage check
"$bin" usage bench --runs 10

echo "== PostgreSQL, $records records"
psql "$pg_admin" -qc "CREATE DATABASE $pg_db"
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$pg_db"
"$bin" usage seed --records "$records"
"$bin" usage check
"$bin" usage bench --runs 10
