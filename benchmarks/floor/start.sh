#!/usr/bin/env bash
# The floor (bare Starlette plus one Redis read per request, see app.py): start.sh PORT
# Served as ../library serves the library app. Env: REDIS_URL, BENCH_BASELINE_APP (default: the
# baseline peer of ../shared/bench next to the checkout).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
port="${1:?usage: start.sh PORT}"
export PYTHONDONTWRITEBYTECODE=1
exec "$root/.venv/bin/uvicorn" app:app --app-dir "$here" --host 127.0.0.1 --port "$port" \
  --workers 1 --loop uvloop --http httptools --no-access-log --log-level warning
