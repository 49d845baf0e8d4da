"""The login-attempt counter on PostgreSQL (see :mod:`sessionauth.backends.sql_attempts`)."""

from __future__ import annotations

import asyncpg

from sessionauth.backends.postgres.pool import PostgresPool
from sessionauth.backends.postgres.table_guard import TableGuard
from sessionauth.backends.sql_attempts import DEFAULT_TABLE, check_options, schema, statements
from sessionauth.errors import ConfigurationError
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
        self._guard = TableGuard(
            database,
            table=table,
            quoted=t,
            schema=schema(
                t,
                index,
                '"key" text COLLATE "C" PRIMARY KEY, count integer NOT NULL,'
                " reset_at double precision NOT NULL",
            ),
            what="PostgreSQL attempt counter",
            owned=owned,
        )
        self._clock = clock
        self._sql = statements(t, "$")

    async def reserve(self, key: str, window: float, limit: int) -> tuple[bool, int, float]:
        """Take one attempt of ``key`` in one guarded upsert (see the module docstring)."""
        now = self._clock()
        row = await self._guard.call(
            "fetchrow", self._sql["reserve"], key, now + window, now, limit
        )
        if row is None:
            return (False, *await self.count(key))
        return True, int(row[0]), float(row[1])

    async def release(self, key: str, reset_at: float) -> None:
        """Give back one attempt of the window ending at ``reset_at``."""
        await self._guard.call("execute", self._sql["release"], key, reset_at)

    async def count(self, key: str) -> tuple[int, float]:
        """Return ``(count, reset_at)``, or ``(0, now)`` once the window is over."""
        now = self._clock()
        row = await self._guard.call("fetchrow", self._sql["count"], key, now)
        return (0, now) if row is None else (int(row[0]), float(row[1]))

    async def reset(self, key: str) -> None:
        """Delete ``key``'s row."""
        await self._guard.call("execute", self._sql["reset"], key)

    async def purge(self, now: float | None = None) -> int:
        """Delete rows whose window ended at or before ``now``; return how many."""
        cutoff = self._clock() if now is None else now
        return await self._guard.rowcount(self._sql["purge"], cutoff)

    async def aclose(self) -> None:
        """Stop counting; close the pool if this counter owns it (an injected one stays open)."""
        await self._guard.aclose()
