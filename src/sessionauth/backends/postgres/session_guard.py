"""What every statement of the PostgreSQL session store goes through: first-use open, a deadline.

Nothing connects when the store is built: the pool (for
:meth:`~sessionauth.backends.postgres.sessions.PostgresStore.from_url`, or the backend's,
:mod:`sessionauth.backends.postgres.pool`) and the tables are created on first use, so a store
can be built before the event loop runs. Tables that are complete are left alone (a read-only
standby still serves reads); a sessions table of 0.1 gets its ``epoch`` and ``version`` columns
then, and its rows, without a version, are no sessions.

Every operation runs under one deadline, ``timeout``, covering first-use setup, pool acquire,
connect, query and release. When it passes mid-query the caller gets ``StoreUnavailable`` at
once; asyncpg's cancellation of the query (or the transaction's rollback), and the
connection's return to the pool (or its termination if the server never acknowledges), finish
in the background within another ``timeout`` (see :mod:`sessionauth.backends.postgres.calls`,
shared with the user store and the attempt counter, which also classifies the errors).

:class:`SessionGuard` is apart from the store, which keeps the operations, and is not the
other views' :class:`~sessionauth.backends.postgres.table_guard.TableGuard`: the session store
is the hot path, so once open it keeps the pool and checks one flag per statement; its two
tables are checked by one query and created by one script
(:data:`~sessionauth.backends.postgres.sql.SCHEMA`); and a NUL in a session value is the
caller's error, not an outage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import asyncpg.exceptions

from sessionauth.backends.postgres import writes
from sessionauth.backends.postgres.calls import UNAVAILABLE, unavailable
from sessionauth.backends.postgres.pool import PostgresPool
from sessionauth.backends.postgres.sql import READY
from sessionauth.errors import StoreUnavailable

__all__ = ["SessionGuard"]

_WHAT = "PostgreSQL session store"
_T = TypeVar("_T")


class SessionGuard:
    """The connection and outage guard of one PostgreSQL session store.

    Args:
        database: The pool the store runs on.
        schema: The script creating (or completing) both tables, run as one transaction.
        table: The sessions table, quoted for SQL.
        principals: The principals table, quoted for SQL.
        owned: Whether :meth:`aclose` closes ``database``.
    """

    def __init__(
        self, database: PostgresPool, *, schema: str, table: str, principals: str, owned: bool
    ):
        self._database = database
        self._schema = schema
        self._tables = (principals, table)
        self._owned = owned
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._timeout = database.timeout
        # False until the pool and the table exist, and again once closed: the one flag the
        # hot path checks.
        self._ready = False
        self._closed = False
        self._open_lock = asyncio.Lock()
        self._calls = database.calls

    async def _open(self) -> None:
        """Create the owned pool if needed, then the table (under the caller's deadline)."""
        async with self._open_lock:
            if self._closed:
                raise StoreUnavailable("the PostgreSQL session store is closed")
            self._pool = await self._database.get()
            if not self._ready:
                if not await self._run("fetchval", READY, *self._tables):
                    await self._run("execute", self._schema)
                self._ready = True

    async def call(self, method: str, sql: str, *args: Any) -> Any:
        """Return ``connection.<method>(sql, *args)`` on a pooled connection, within the timeout.

        One timer bounds the whole operation: there is no separate acquire or query timer.

        Raises:
            StoreUnavailable: Once closed, or if PostgreSQL cannot serve.
            ValueError: For a NUL in a session value.
        """
        try:
            async with asyncio.timeout(self._timeout):
                if not self._ready:
                    await self._open()
                return await self._run(method, sql, *args)
        except UNAVAILABLE as exc:
            raise unavailable(exc, _WHAT) from exc
        except asyncpg.exceptions.UntranslatableCharacterError as exc:
            # jsonb cannot hold U+0000 inside a string; retrying will not change that.
            raise ValueError("PostgreSQL cannot store U+0000 (NUL) in session values") from exc

    async def _run(self, method: str, sql: str, *args: Any) -> Any:
        pool = self._pool
        if pool is None:
            raise StoreUnavailable("the PostgreSQL session store is not open")
        return await self._calls.run(pool, method, sql, *args)

    async def transact(self, work: Callable[[writes.Connection], Awaitable[_T]]) -> _T:
        """Return ``await work(connection)`` run in one transaction, within the timeout.

        Raises:
            StoreUnavailable: As :meth:`call` does.
            ValueError: As :meth:`call` does.
        """
        try:
            async with asyncio.timeout(self._timeout):
                if not self._ready:
                    await self._open()
                pool = self._pool
                if pool is None:
                    raise StoreUnavailable("the PostgreSQL session store is not open")
                return await self._calls.transact(pool, work)
        except UNAVAILABLE as exc:
            raise unavailable(exc, _WHAT) from exc
        except asyncpg.exceptions.UntranslatableCharacterError as exc:
            raise ValueError("PostgreSQL cannot store U+0000 (NUL) in session values") from exc

    async def aclose(self) -> None:
        """Stop serving; close the pool if the store owns it (an injected one stays open)."""
        self._closed, self._ready = True, False
        async with self._open_lock:  # a first-use open in flight finishes (or fails) first
            self._pool = None
        if self._owned:
            self._owned = False
            await self._database.aclose()
