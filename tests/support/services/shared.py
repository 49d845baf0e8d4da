"""The machine's shared Redis and PostgreSQL, used only through namespaces a run owns.

Tests reach the shared Redis only on a dedicated DB number with a per-run key prefix, and the
shared PostgreSQL only through a database of their own. Nothing here flushes a database it
did not create: keys are deleted by prefix, databases dropped by the name they were made with.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import re
import uuid
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

from tests.support.services.policy import ServiceUnavailable
from tests.support.services.ports import LOOPBACK

T = TypeVar("T")

SHARED_REDIS_DB = 13


def shared_redis_url() -> str:
    """The shared Redis, on the DB number reserved for these tests."""
    return f"redis://{LOOPBACK}:6379/{SHARED_REDIS_DB}"


def shared_postgres_dsn(database: str = "test") -> str:
    """The shared PostgreSQL server (trust auth, user ``postgres``), on `database`."""
    return f"postgresql://postgres@{LOOPBACK}:5432/{database}"


def probe_redis(url: str) -> None:
    """Raise `ServiceUnavailable` unless the Redis at `url` answers PING."""
    import redis

    try:
        with redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2) as client:
            client.ping()
    except redis.RedisError as exc:
        raise ServiceUnavailable(f"cannot reach Redis at {url}: {exc}") from exc


def delete_redis_keys(url: str, prefix: str) -> int:
    """Delete every key starting with `prefix` with SCAN and UNLINK (never FLUSHDB).

    Returns:
        How many keys were deleted.
    """
    import redis

    if not prefix or any(char in prefix for char in "*?[]\\"):
        raise ValueError(f"refusing to delete by the prefix {prefix!r}: it must be literal")
    deleted = 0
    with redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2) as client:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix}*", count=500):
            batch.append(key)
            if len(batch) == 500:
                deleted += client.unlink(*batch)
                batch.clear()
        if batch:
            deleted += client.unlink(*batch)
    return deleted


def _run_async(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine on a fresh event loop in a worker thread.

    Sync fixtures may be set up while an event loop is already running in this thread, where
    `asyncio.run` would refuse to work.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


async def _postgres_execute(dsn: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(dsn, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def probe_postgres(dsn: str) -> None:
    """Raise `ServiceUnavailable` unless the PostgreSQL at `dsn` accepts a connection."""
    import asyncpg

    try:
        _run_async(lambda: _postgres_execute(dsn, "SELECT 1"))
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise ServiceUnavailable(f"cannot reach PostgreSQL at {dsn}: {exc!r}") from exc


@contextlib.contextmanager
def temporary_postgres_database(
    server_dsn: str, *, prefix: str = "sessionauth_test_"
) -> Iterator[str]:
    """Create a uniquely named database, yield its DSN, then drop it.

    The drop uses ``WITH (FORCE)``, so connections a failed test left open do not keep the
    database alive.

    Args:
        server_dsn: A DSN of any database on the server, used for CREATE and DROP DATABASE.
        prefix: The start of the database name; a random suffix makes it unique.
    """
    name = f"{prefix}{uuid.uuid4().hex[:12]}"
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ValueError(f"{name!r} is not a plain lower-case SQL identifier")
    _run_async(lambda: _postgres_execute(server_dsn, f'CREATE DATABASE "{name}"'))
    try:
        yield server_dsn.rsplit("/", 1)[0] + f"/{name}"
    finally:
        drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        _run_async(lambda: _postgres_execute(server_dsn, drop))
