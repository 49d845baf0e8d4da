#!/usr/bin/env bash
# The library benchmark app on the PostgreSQL store: start.sh PORT (see ../library).
# BENCH_POSTGRES_URL names the database (default: the local `test` database, own table).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export BENCH_STORE_URL="${BENCH_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/test}"
exec "$here/../library/start.sh" "$@"
