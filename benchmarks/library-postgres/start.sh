#!/usr/bin/env bash
# The library benchmark app on the PostgreSQL store: start.sh PORT (see ../library).
# BENCH_POSTGRES_URL names the database. Default: a database of the benchmark's own,
# `sessionauth_bench` on the local server, made here if missing, so that the sessions it leaves
# never land in a database other work uses (the shared `test` one, say).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ -z "${BENCH_POSTGRES_URL:-}" ]]; then
  server=(-h 127.0.0.1 -p 5432 -U postgres)
  if [[ -z "$(psql "${server[@]}" -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'sessionauth_bench'")" ]]; then
    createdb "${server[@]}" sessionauth_bench
  fi
  BENCH_POSTGRES_URL="postgresql://postgres@127.0.0.1:5432/sessionauth_bench"
fi
export BENCH_STORE_URL="$BENCH_POSTGRES_URL"
exec "$here/../library/start.sh" "$@"
