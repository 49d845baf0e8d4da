#!/usr/bin/env bash
# The reference server under the bench contract, in the foreground: start.sh PORT
# `sessionauth serve --no-access-log` (as the Python peers run) with default settings (development mode on plain HTTP loopback), sessions in
# REDIS_URL, users in a fresh SQLite file holding the contract's one admin (id 1). The contract's
# cookie is `sessionId`, its lifetime 24 h: the only two settings changed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
port="${1:?usage: start.sh PORT}"
work="$(mktemp -d /tmp/sessionauth-bench.XXXXXX)"
export SESSIONAUTH_DATA_DIR="$work"
export SESSIONAUTH_DATABASE_URL="sqlite:///$work/users.db"
export SESSIONAUTH_STORE_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
export SESSIONAUTH_COOKIE_NAME=sessionId
export SESSIONAUTH_ABSOLUTE_TIMEOUT=86400
export SESSIONAUTH_SECRET="${BENCH_SECRET:-$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')}"
printf '%s' "${BENCH_PASSWORD:-correct-horse-battery-staple-bench-password-42}" |
  "$root/.venv/bin/sessionauth" users create "${BENCH_EMAIL:-bench@example.com}" --role admin \
    --password-stdin >/dev/null
exec "$root/.venv/bin/sessionauth" serve --host 127.0.0.1 --port "$port" --no-access-log
