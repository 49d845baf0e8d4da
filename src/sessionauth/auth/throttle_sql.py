"""Attempt counters on SQLite and PostgreSQL (see :mod:`sessionauth.auth.throttle`).

Each ``reserve`` is one ``INSERT … ON CONFLICT DO UPDATE … WHERE … RETURNING`` that starts a
new window when the stored one has ended (``reset_at <= now``), adds one while the count is
below the limit, and otherwise changes nothing and returns no row (refused): the row's lock
serialises concurrent attempts from every worker, so no more than the limit are ever granted.
``release`` takes one back only from the same window (same ``reset_at``). Ended rows count as
zero until
:meth:`~SQLiteCounter.purge` deletes them. Windows come from the counter's clock, never the
server's, so they agree with the ``retry_after`` the throttle computes. asyncpg is imported
only when a PostgreSQL counter is built. The Redis counter is :mod:`.throttle_redis`.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import sqlite3
from collections.abc import Awaitable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import aiosqlite

from sessionauth.auth.throttle import AttemptCounter
from sessionauth.errors import ConfigurationError, StoreUnavailable
from sessionauth.policy import Clock, system_clock
from sessionauth.stores.base import DEFAULT_TIMEOUT
from sessionauth.stores.sqlite_files import BUGS, open_sqlite, unavailable

if TYPE_CHECKING:
    import asyncpg

    from sessionauth.stores.postgres_calls import PooledCalls

__all__ = ["DEFAULT_TABLE", "PostgresCounter", "SQLiteCounter"]

DEFAULT_TABLE = "sessionauth_attempts"
"""The table SQL counters use unless told otherwise."""

_T = TypeVar("_T")
# At most 48 characters, so the index name derived from it fits PostgreSQL's 63 bytes.
_NAME = r"[A-Za-z_][A-Za-z0-9_]{0,47}"

# One upsert for both SQL dialects ({p1}..{p4} become their placeholders). Inside DO UPDATE,
# the table name refers to the stored row, ``excluded`` to the proposed one; a row the WHERE
# leaves alone (a live window at the limit) is not returned.
_RESERVE = (
    'INSERT INTO {table} AS t ("key", count, reset_at) VALUES ({p1}, 1, {p2})'
    ' ON CONFLICT ("key") DO UPDATE SET'
    " count = CASE WHEN t.reset_at <= {p3} THEN 1 ELSE t.count + 1 END,"
    " reset_at = CASE WHEN t.reset_at <= {p3} THEN excluded.reset_at ELSE t.reset_at END"
    " WHERE t.reset_at <= {p3} OR t.count < {p4}"
    " RETURNING count, reset_at"
)
_RELEASE = (
    'UPDATE {table} SET count = count - 1 WHERE "key" = {p1} AND reset_at = {p2} AND count > 0'
)
_COUNT = 'SELECT count, reset_at FROM {table} WHERE "key" = {p1} AND reset_at > {p2}'
_RESET = 'DELETE FROM {table} WHERE "key" = {p1}'
_PURGE = "DELETE FROM {table} WHERE reset_at <= {p1}"


def _check(table: str, timeout: float, *, schemas: bool) -> tuple[str, str]:
    """Validate the options; return ``table`` quoted for SQL and its index's quoted name."""
    pattern = rf"(?:{_NAME}\.)?{_NAME}" if schemas else _NAME
    if not re.fullmatch(pattern, table):
        raise ConfigurationError(
            f"invalid table name {table!r}: use up to 48 letters, digits and _"
            + (", optionally after a schema and a dot" if schemas else "")
        )
    if not timeout > 0:
        raise ConfigurationError("the counter timeout must be a positive number of seconds")
    name = table.rpartition(".")[2]
    return ".".join(f'"{part}"' for part in table.split(".")), f'"{name}_reset_at"'


def _statements(table: str, marker: str) -> dict[str, str]:
    """The counter's statements on ``table``, with ``marker`` + n as the n-th parameter."""
    p1, p2, p3, p4 = (f"{marker}{n}" for n in (1, 2, 3, 4))
    return {
        "reserve": _RESERVE.format(table=table, p1=p1, p2=p2, p3=p3, p4=p4),
        "release": _RELEASE.format(table=table, p1=p1, p2=p2),
        "count": _COUNT.format(table=table, p1=p1, p2=p2),
        "reset": _RESET.format(table=table, p1=p1),
        "purge": _PURGE.format(table=table, p1=p1),
    }


def _schema(table: str, index: str, columns: str, options: str = "") -> tuple[str, str]:
    return (
        f"CREATE TABLE IF NOT EXISTS {table} ({columns}){options}",
        # For purge; the index changes only when a new window starts, not on every hit.
        f"CREATE INDEX IF NOT EXISTS {index} ON {table} (reset_at)",
    )


# --------------------------------------------------------------------------- SQLite


class SQLiteCounter(AttemptCounter):
    """Counts in a SQLite table, through aiosqlite's worker thread.

    The database is opened (WAL mode, the table created if missing) on first use, and closed
    by :meth:`aclose`. One connection serialises every statement, and each ``reserve`` is a
    single statement, so counts are exact across tasks and across processes sharing the file.

    Args:
        path: The database file (``:memory:`` for a private one); its directory is created.
        clock: The time source deciding windows.
        timeout: Seconds an operation (and the busy wait on a locked file) may take.
        table: The table's name.

    Raises:
        ConfigurationError: For an invalid table name or timeout.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock = system_clock,
        timeout: float = DEFAULT_TIMEOUT,
        table: str = DEFAULT_TABLE,
    ):
        t, index = _check(table, timeout, schemas=False)
        self._path = os.fspath(path)
        self._clock = clock
        self._timeout = timeout
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self._setup = (
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = NORMAL",
            *_schema(
                t,
                index,
                '"key" TEXT PRIMARY KEY NOT NULL, count INTEGER NOT NULL, reset_at REAL NOT NULL',
                " WITHOUT ROWID",
            ),
        )
        self._sql = _statements(t, "?")

    async def _connection(self) -> aiosqlite.Connection:
        if self._db is not None:
            return self._db
        async with self._lock:
            if self._closed:
                raise StoreUnavailable("the SQLite attempt counter is closed")
            if self._db is None:
                self._db = await self._open()
            return self._db

    async def _open(self) -> aiosqlite.Connection:
        db = await open_sqlite(self._path, timeout=self._timeout)
        try:
            for statement in self._setup:
                await self._run(db.execute_fetchall(statement))
        except BaseException:
            await db.close()
            raise
        return db

    async def _run(self, operation: Awaitable[_T]) -> _T:
        try:
            async with asyncio.timeout(self._timeout):
                return await operation
        except BUGS:
            raise
        except TimeoutError as exc:
            raise StoreUnavailable(
                f"SQLite attempt counter timed out after {self._timeout} s"
            ) from exc
        except sqlite3.DatabaseError as exc:
            # "database is locked" after the busy timeout, I/O and disk-full errors.
            raise unavailable(exc, "SQLite attempt counter") from exc

    async def _fetch(self, name: str, *params: Any) -> Iterable[Sequence[Any]]:
        db = await self._connection()
        return await self._run(db.execute_fetchall(self._sql[name], params))

    async def reserve(self, key: str, window: float, limit: int) -> tuple[bool, int, float]:
        """Take one attempt of ``key`` in one guarded upsert (see the module docstring)."""
        now = self._clock()
        for count, reset_at in await self._fetch("reserve", key, now + window, now, limit):
            return True, int(count), float(reset_at)
        return (False, *await self.count(key))

    async def release(self, key: str, reset_at: float) -> None:
        """Give back one attempt of the window ending at ``reset_at``."""
        await self._fetch("release", key, reset_at)

    async def count(self, key: str) -> tuple[int, float]:
        """Return ``(count, reset_at)``, or ``(0, now)`` once the window is over."""
        now = self._clock()
        for count, reset_at in await self._fetch("count", key, now):
            return int(count), float(reset_at)
        return 0, now

    async def reset(self, key: str) -> None:
        """Delete ``key``'s row."""
        await self._fetch("reset", key)

    async def purge(self, now: float | None = None) -> int:
        """Delete rows whose window ended at or before ``now``; return how many."""
        db = await self._connection()
        cutoff = self._clock() if now is None else now
        cursor = await self._run(db.execute(self._sql["purge"], (cutoff,)))
        return int(cursor.rowcount)

    async def aclose(self) -> None:
        """Close the connection (if one was opened)."""
        async with self._lock:
            self._closed = True
            db, self._db = self._db, None
        if db is not None:
            await db.close()


# --------------------------------------------------------------------------- PostgreSQL


class PostgresCounter(AttemptCounter):
    """Counts in a PostgreSQL table through an asyncpg pool.

    Give it a DSN, and it creates (on first use) and closes (in :meth:`aclose`) its own pool;
    or give it an open ``pool`` that you own and close. The table is created if missing, on
    first use. Each ``reserve`` is one upsert, serialised on the row's lock.

    Args:
        dsn: A ``postgresql://`` DSN; exactly one of ``dsn`` and ``pool``.
        pool: An open asyncpg pool.
        clock: The time source deciding windows.
        timeout: Seconds an operation (pool acquire and connect included) may take.
        table: The table's name, optionally ``schema.table``.

    Raises:
        ConfigurationError: For an invalid table name or timeout, or not exactly one of
            ``dsn`` and ``pool``.
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        pool: asyncpg.Pool | None = None,
        clock: Clock = system_clock,
        timeout: float = DEFAULT_TIMEOUT,
        table: str = DEFAULT_TABLE,
    ):
        if (dsn is None) == (pool is None):
            raise ConfigurationError("give PostgresCounter a DSN or a pool (exactly one)")
        t, index = _check(table, timeout, schemas=True)
        self._dsn = dsn
        self._pool = pool
        self._clock = clock
        self._timeout = timeout
        self._ready = False
        self._closed = False
        self._lock = asyncio.Lock()
        self._schema = _schema(
            t,
            index,
            '"key" text COLLATE "C" PRIMARY KEY, count integer NOT NULL,'
            " reset_at double precision NOT NULL",
        )
        self._table = table
        self._sql = _statements(t, "$")
        self._calls: PooledCalls | None = None

    async def _ready_pool(self) -> tuple[asyncpg.Pool, PooledCalls]:
        if self._ready and self._pool is not None and self._calls is not None:
            return self._pool, self._calls
        async with self._lock:
            if self._closed:
                raise StoreUnavailable("the PostgreSQL attempt counter is closed")
            if self._pool is None:
                self._pool = await self._create_pool()
            if self._calls is None:
                from sessionauth.stores.postgres_calls import PooledCalls

                self._calls = PooledCalls(self._timeout)
            if not self._ready:
                await self._create_table(self._pool)
                self._ready = True
            return self._pool, self._calls

    async def _create_pool(self) -> asyncpg.Pool:
        try:
            import asyncpg
        except ImportError as exc:
            from sessionauth.stores import missing_extra

            raise missing_extra("postgres", exc) from exc
        try:
            return await asyncpg.create_pool(
                self._dsn,
                min_size=1,
                max_size=10,
                timeout=self._timeout,
                command_timeout=self._timeout,
                server_settings={"application_name": "sessionauth"},
            )
        except asyncpg.exceptions.ClientConfigurationError as exc:
            raise ConfigurationError(f"invalid PostgreSQL attempt counter DSN: {exc}") from exc

    async def _create_table(self, pool: asyncpg.Pool) -> None:
        # Concurrent CREATE TABLE IF NOT EXISTS can still collide in the catalog, so workers
        # starting together queue on an advisory lock named after the table.
        digest = hashlib.sha256(f"sessionauth:{self._table}".encode()).digest()
        lock_key = int.from_bytes(digest[:8], "big", signed=True)
        async with pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", lock_key)
            for statement in self._schema:
                await connection.execute(statement)

    async def _call(self, method: str, sql: str, *args: Any) -> Any:
        """Run one statement, first use's setup included, under one deadline."""
        from sessionauth.stores.postgres_calls import UNAVAILABLE, unavailable

        try:
            async with asyncio.timeout(self._timeout):
                pool, calls = await self._ready_pool()
                return await calls.run(pool, method, sql, *args)
        except UNAVAILABLE as exc:
            raise unavailable(exc, "PostgreSQL attempt counter") from exc

    async def reserve(self, key: str, window: float, limit: int) -> tuple[bool, int, float]:
        """Take one attempt of ``key`` in one guarded upsert (see the module docstring)."""
        now = self._clock()
        row = await self._call("fetchrow", self._sql["reserve"], key, now + window, now, limit)
        if row is None:
            return (False, *await self.count(key))
        return True, int(row[0]), float(row[1])

    async def release(self, key: str, reset_at: float) -> None:
        """Give back one attempt of the window ending at ``reset_at``."""
        await self._call("execute", self._sql["release"], key, reset_at)

    async def count(self, key: str) -> tuple[int, float]:
        """Return ``(count, reset_at)``, or ``(0, now)`` once the window is over."""
        now = self._clock()
        row = await self._call("fetchrow", self._sql["count"], key, now)
        return (0, now) if row is None else (int(row[0]), float(row[1]))

    async def reset(self, key: str) -> None:
        """Delete ``key``'s row."""
        await self._call("execute", self._sql["reset"], key)

    async def purge(self, now: float | None = None) -> int:
        """Delete rows whose window ended at or before ``now``; return how many."""
        cutoff = self._clock() if now is None else now
        status = await self._call("execute", self._sql["purge"], cutoff)
        return int(status.rpartition(" ")[2])

    async def aclose(self) -> None:
        """Close the pool if this counter created it; an injected pool is left open."""
        async with self._lock:
            self._closed, self._ready = True, False
            pool, owned = self._pool, self._dsn is not None
            self._pool = None
        if pool is not None and owned:
            try:
                async with asyncio.timeout(self._timeout):
                    await pool.close()
            except (OSError, TimeoutError):  # the server is gone: drop what will not close
                pool.terminate()
