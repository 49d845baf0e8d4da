#!/usr/bin/env bash
# The library benchmark app on the compiled build (`make compiled`): start.sh PORT (see ../library).
# The same app and Redis store; only the hot modules are mypyc extensions (tools/build_compiled.py).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="$(cd "$here/../.." && pwd)/build/compiled"
if [[ ! -d "$build/sessionauth" ]]; then
  echo "no compiled build in $build: run \`make compiled\` first" >&2
  exit 1
fi
export PYTHONPATH="$build${PYTHONPATH:+:$PYTHONPATH}"
exec "$here/../library/start.sh" "$@"
