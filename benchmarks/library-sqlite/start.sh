#!/usr/bin/env bash
# The library benchmark app on the embedded SQLite store: start.sh PORT (see ../library).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$(mktemp -d /tmp/sessionauth-bench-sqlite.XXXXXX)"
export BENCH_STORE_URL="sqlite:///$work/sessions.db"
exec "$here/../library/start.sh" "$@"
