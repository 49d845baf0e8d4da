#!/usr/bin/env bash
# Start the library benchmark app in the foreground: start.sh PORT
# One uvicorn process (uvloop + httptools, access log off), like the Python peers in
# ../shared/bench. Env: REDIS_URL (the store, unless BENCH_STORE_URL is set), BENCH_EMAIL,
# BENCH_PASSWORD, BENCH_APP_DIR (the folder whose app.py is served: this one unless set).
# Uses the project's .venv (make install creates it).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
port="${1:?usage: start.sh PORT}"
export PYTHONDONTWRITEBYTECODE=1
exec "$root/.venv/bin/uvicorn" app:app --app-dir "${BENCH_APP_DIR:-$here}" --host 127.0.0.1 \
  --port "$port" --workers 1 --loop uvloop --http httptools --no-access-log --log-level warning
