"""Soak the reference server: many simulated users on several processes sharing one Redis.

Usage (from the repository root; Redis must answer on the given URL)::

    .venv/bin/python benchmarks/soak.py --duration 60 --users 200 --processes 2

Starts ``--processes`` ``sessionauth serve`` processes on free loopback ports, all on the Redis
at ``--redis-url`` under a fresh key prefix (deleted afterwards, never a flush), creates one
account per user, runs the scenario of :mod:`tests.support.soak` (the same driver as
``tests/integration/test_soak.py``), and prints the request counts, per-route p50/p99 latencies
and every kind of error. Exits 1 if anything went wrong.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from pathlib import Path

# Run as a script, Python puts benchmarks/ on the path, not the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import services
from tests.support.soak import soak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--users", type=int, default=200, help="simulated users")
    parser.add_argument("--processes", type=int, default=2, help="server processes")
    parser.add_argument(
        "--redis-url", default=services.shared_redis_url(), help="Redis for the sessions"
    )
    args = parser.parse_args()
    services.probe_redis(args.redis_url)
    prefix = f"sabench:{uuid.uuid4().hex[:12]}:"
    try:
        with tempfile.TemporaryDirectory(prefix="sessionauth-soak-") as workdir:
            report = soak(
                args.duration,
                args.users,
                args.processes,
                store_url=f"{args.redis_url}?prefix={prefix}",
                workdir=Path(workdir),
            )
    finally:
        services.delete_redis_keys(args.redis_url, prefix)
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
