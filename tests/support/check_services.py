"""`make test`'s first step: say whether the shared Redis and PostgreSQL answer.

Under ``CI=true`` a missing service fails the run at once, with the command that starts it;
elsewhere it prints a warning, and the tests that need the service skip with a reason.
"""

from __future__ import annotations

import sys

from tests.support.services import (
    ServiceUnavailable,
    ci_mode,
    probe_postgres,
    probe_redis,
    shared_postgres_dsn,
    shared_redis_url,
)

START = {
    "Redis": "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no",
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
}


def main() -> int:
    """Probe each service; return the exit status."""
    missing = []
    for name, probe, target in (
        ("Redis", probe_redis, shared_redis_url()),
        ("PostgreSQL", probe_postgres, shared_postgres_dsn()),
    ):
        try:
            probe(target)
        except (ServiceUnavailable, OSError) as exc:
            missing.append(name)
            print(f"services: {name} does not answer at {target}: {exc}", file=sys.stderr)
            print(f"services:   start it with: {START[name]}", file=sys.stderr)
        else:
            print(f"services: {name} answers at {target}")
    if missing and ci_mode():
        print("services: CI=true, so a missing service is a failure", file=sys.stderr)
        return 1
    if missing:
        print("services: the tests that need them will be skipped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
