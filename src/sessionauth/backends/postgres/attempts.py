"""The login-attempt counter on PostgreSQL (see :mod:`sessionauth.backends.sql_attempts`)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from sessionauth.backends.postgres.calls import UNAVAILABLE, unavailable
from sessionauth.backends.postgres.pool import PostgresPool
from sessionauth.backends.sql_attempts import DEFAULT_TABLE, check_options, schema, statements
from sessionauth.errors import ConfigurationError, StoreUnavailable
from sessionauth.policy import Clock, system_clock
from sessionauth.stores.attempts import AttemptCounter
from sessionauth.stores.base import DEFAULT_TIMEOUT

__all__ = ["PostgresCounter"]


class PostgresCounter(AttemptCounter):
    """Counts in a PostgreSQL table through an asyncpg pool.

    Give it a DSN, and it creates (on first use) and closes (in :meth:`aclose`) its own pool;
    or give it an open ``pool`` that you own and close; or get it from a
    :class:`~sessionauth.backends.postgres.PostgresBackend`, whose pool it shares. The table is
    created if missing, on first use. Each ``reserve`` is one upsert, serialised on the row's
    lock.

    Args:
        dsn: A ``postgresql://`` DSN.
        pool: An open asyncpg pool.
        database: A backend's shared pool (closed by :meth:`aclose` only if ``owned``).
            Exactly one of ``dsn``, ``pool`` and ``database``.
        clock: The time source deciding windows.
        timeout: Seconds an operation (pool acquire and connect included) may take.
        table: The table's name, optionally ``schema.table``.
        owned: Whether :meth:`aclose` closes ``database``.

    Raises:
        ConfigurationError: For an invalid table name or timeout, or not exactly one of
            ``dsn``, ``pool`` and ``database``.
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        pool: asyncpg.Pool | None = None,
        database: PostgresPool | None = None,
        clock: Clock = system_clock,
        timeout: float = DEFAULT_TIMEOUT,
        table: str = DEFAULT_TABLE,
        owned: bool = False,
    ):
        if (dsn is not None) + (pool is not None) + (database is not None) != 1:
            raise ConfigurationError("give PostgresCounter a DSN, a pool or a database (one)")
        t, index = check_options(table, timeout, schemas=True)
        if database is None:
            database = PostgresPool(dsn, pool=pool, timeout=timeout)
            owned = dsn is not None
        self._database = database
        self._owned = owned
        self._clock = clock
        self._timeout = database.timeout
        self._ready = False
        self._closed = False
        self._lock = asyncio.Lock()
        self._schema = schema(
            t,
            index,
            '"key" text COLLATE "C" PRIMARY KEY, count integer NOT NULL,'
            " reset_at double precision NOT NULL",
        )
        self._table, self._quoted = table, t
        self._sql = statements(t, "$")

    async def _ensure_table(self) -> None:
        async with self._lock:
            if self._closed:
                raise StoreUnavailable("the PostgreSQL attempt counter is closed")
            if not self._ready:
                await self._database.create_tables(self._table, self._quoted, self._schema)
                self._ready = True

    async def _call(self, method: str, sql: str, *args: Any) -> Any:
        """Run one statement, first use's setup included, under one deadline."""
        try:
            async with asyncio.timeout(self._timeout):
                if not self._ready:
                    await self._ensure_table()
                return await self._database.run(method, sql, *args)
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
        """Stop counting; close the pool if this counter owns it (an injected one stays open)."""
        async with self._lock:
            self._closed, self._ready = True, False
        if self._owned:
            self._owned = False
            await self._database.aclose()
