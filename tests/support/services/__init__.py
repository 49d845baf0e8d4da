"""Real Redis and PostgreSQL servers for the tests, on loopback addresses only.

Two kinds of service live here:

- Private servers (`RedisServer`, `RedisCluster`, `RedisSentinelSetup`, `PostgresServer`) that
  a test starts, breaks and throws away. Each process runs in its own process group with its
  own temporary directory; `stop()`/`close()` end them, and an `atexit` hook kills whatever is
  left, so a failing test or an interrupted run leaves no stray servers behind.
- The machine's shared Redis and PostgreSQL, which tests use only through a dedicated Redis DB
  number with a per-run key prefix, and a database of their own. Nothing here flushes a
  database it did not create.

`require_service` turns "this service is not there" into a skip on a developer machine and a
loud failure under ``CI=true``, so a CI run can never go green by skipping its backends.

The modules, one concept each:

- `policy`: `ServiceUnavailable`, and the skip-or-fail rule (`require_service`, `ci_mode`).
- `ports`: free loopback ports (`free_port`).
- `process`: `ServerProcess`, the base of every private server, and the reaping of them all.
- `redis_servers`: `RedisServer` and `redis_call`.
- `redis_cluster`: `RedisCluster`.
- `redis_sentinel`: `RedisSentinelSetup`.
- `postgres`: `PostgresServer`.
- `shared`: the shared Redis and PostgreSQL (URLs, probes, key cleanup, temporary databases).

This package re-exports what the tests use; code that defines a new kind of private server
(``tests.support.live_server``) imports `ServerProcess` from `process` itself.
"""

from __future__ import annotations

from tests.support.services.policy import ServiceUnavailable, ci_mode, require_service
from tests.support.services.ports import LOOPBACK, free_port
from tests.support.services.postgres import PostgresServer
from tests.support.services.process import START_TIMEOUT
from tests.support.services.redis_cluster import RedisCluster
from tests.support.services.redis_sentinel import RedisSentinelSetup
from tests.support.services.redis_servers import RedisServer, redis_call
from tests.support.services.shared import (
    SHARED_REDIS_DB,
    delete_redis_keys,
    probe_postgres,
    probe_redis,
    shared_postgres_dsn,
    shared_redis_url,
    temporary_postgres_database,
)

__all__ = [
    "LOOPBACK",
    "SHARED_REDIS_DB",
    "START_TIMEOUT",
    "PostgresServer",
    "RedisCluster",
    "RedisSentinelSetup",
    "RedisServer",
    "ServiceUnavailable",
    "ci_mode",
    "delete_redis_keys",
    "free_port",
    "probe_postgres",
    "probe_redis",
    "redis_call",
    "require_service",
    "shared_postgres_dsn",
    "shared_redis_url",
    "temporary_postgres_database",
]
