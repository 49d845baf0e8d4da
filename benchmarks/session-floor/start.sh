#!/usr/bin/env bash
# The floor of a session layer (the library's per-request work inlined, see app.py): start.sh PORT
# Served as ../library serves the library app. Env: REDIS_URL, BENCH_BASELINE_APP (default: the
# baseline peer of ../shared/bench next to the checkout).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH_APP_DIR="$here" exec "$here/../library/start.sh" "$@"
