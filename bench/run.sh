#!/usr/bin/env bash
# make bench, on SQLite and on PostgreSQL (release build):
# 1. the dashboard: seed RECORDS (default 1,000,000) synthetic usage records, check that
#    the aggregates and counters agree with them, time every view of /admin/tokens;
# 2. admission: the cost of admitting a call on a deal with 10,000 and then 1,000,000
#    records of history (it reads running counters, so it must not grow).
set -euo pipefail
cd "$(dirname "$0")/.."
records=${RECORDS:-1000000}
bin=target/release/server
workdir=$(mktemp -d)
pg_admin="postgres://postgres@127.0.0.1:5432/postgres"
pg_dbs=()
cleanup() {
  rm -rf "$workdir"
  for db in "${pg_dbs[@]}"; do psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT
export DEALDESK_CONFIG="$PWD/Leptos.toml"

database() { # engine name -> DATABASE_URL of a fresh database
  case "$1" in
    sqlite) echo "sqlite://$workdir/$2.db?mode=rwc" ;;
    postgres)
      local db="dealdesk_bench_$2_$$"
      psql "$pg_admin" -qc "CREATE DATABASE $db" >/dev/null
      echo "postgres://postgres@127.0.0.1:5432/$db" ;;
  esac
}

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for engine in sqlite postgres; do
  echo "== $engine: dashboard, $records records"
  [ "$engine" = postgres ] && pg_dbs+=("dealdesk_bench_dash_$$")
  export DATABASE_URL=$(database "$engine" dash)
  "$bin" usage seed --records "$records"
  "$bin" usage check
  "$bin" usage bench --runs 10

  echo "== $engine: admission against one deal's history"
  [ "$engine" = postgres ] && pg_dbs+=("dealdesk_bench_adm_$$")
  export DATABASE_URL=$(database "$engine" adm)
  "$bin" usage seed --records 10000 --one-deal
  "$bin" usage bench-admission --runs 500
  "$bin" usage seed --records 990000 --one-deal
  "$bin" usage check
  "$bin" usage bench-admission --runs 500
done
