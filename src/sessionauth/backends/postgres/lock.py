"""The purge lock on PostgreSQL: a transaction-scoped advisory lock on a pooled connection."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from sessionauth.backends.locks import PurgeLock
from sessionauth.backends.postgres.calls import UNAVAILABLE, unavailable
from sessionauth.backends.postgres.pool import PostgresPool, advisory_key

__all__ = ["PostgresLock"]


class PostgresLock(PurgeLock):
    """``pg_try_advisory_xact_lock`` inside a transaction, on a connection of the backend's pool.

    The lock is held while the sweep runs (on other connections of the same pool) and released
    by the commit, or by the server if the connection dies.

    Args:
        database: The backend's pool.
    """

    def __init__(self, database: PostgresPool):
        self._database = database
        self.key = advisory_key("purge")

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[bool]:
        """Yield whether this process got the lock; commit and hand the connection back after.

        Raises:
            StoreUnavailable: If the database cannot be reached in time.
        """
        try:
            async with asyncio.timeout(self._database.timeout):
                pool = await self._database.get()
                connection = await pool.acquire()
        except UNAVAILABLE as exc:
            raise unavailable(exc, "purge lock") from exc
        try:
            async with connection.transaction():
                try:
                    got = await connection.fetchval(
                        "SELECT pg_try_advisory_xact_lock($1)",
                        self.key,
                        timeout=self._database.timeout,
                    )
                except UNAVAILABLE as exc:
                    raise unavailable(exc, "purge lock") from exc
                yield bool(got)
        finally:
            await pool.release(connection)
