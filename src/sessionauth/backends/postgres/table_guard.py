"""One PostgreSQL table (or a few) of a view: created on first use, refused once closed.

The attempt counter, the single-use token store, the factor store and the user store keep
their tables on a backend's shared pool, and need the same guard around every statement: the
tables created once before the first (setup and statement under one deadline),
``StoreUnavailable`` once the view is closed or when PostgreSQL cannot serve
(:data:`~sessionauth.backends.postgres.calls.UNAVAILABLE`), and the pool closed only by the
view that owns it. :class:`TableGuard` is that guard, once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg

from sessionauth.backends.postgres.calls import UNAVAILABLE, unavailable
from sessionauth.backends.postgres.pool import PostgresPool
from sessionauth.errors import StoreUnavailable

__all__ = ["TableGuard"]

_T = TypeVar("_T")


class TableGuard:
    """The connection and outage guard of one PostgreSQL view.

    Args:
        database: The pool the view runs on.
        table: Names the advisory lock the tables are created under (the table's name as
            given, ``schema.table`` allowed).
        quoted: The table whose existence means the setup is done, as SQL names it (of
            several, the last one ``schema`` creates).
        schema: The statements creating the tables and their indexes (and adding what older
            tables lack).
        what: The view's name in messages (``"PostgreSQL token store"``).
        owned: Whether :meth:`aclose` closes ``database``.
        column: The column ``quoted`` must have to count as existing, the last one a release
            added (see ``PostgresPool.create_tables``).
        name: The view's name in the closed message, where it differs from ``what``.
    """

    def __init__(
        self,
        database: PostgresPool,
        *,
        table: str,
        quoted: str,
        schema: Sequence[str],
        what: str,
        owned: bool,
        column: str | None = None,
        name: str | None = None,
    ):
        self._database = database
        self._table, self._quoted, self._schema = table, quoted, schema
        self._column = column
        self._what = what
        self._name = what if name is None else name
        self._owned = owned
        self._timeout = database.timeout
        self._lock = asyncio.Lock()
        self._ready = False
        self._closed = False

    async def _ensure_table(self) -> None:
        async with self._lock:
            if self._closed:
                raise StoreUnavailable(f"the {self._name} is closed")
            if not self._ready:
                await self._database.create_tables(
                    self._table, self._quoted, self._schema, column=self._column
                )
                self._ready = True

    @contextlib.asynccontextmanager
    async def pool(self) -> AsyncIterator[asyncpg.Pool[asyncpg.Record]]:
        """Yield the pool, first use's setup done; the block and the setup share one deadline.

        Raises:
            StoreUnavailable: Once closed, or if PostgreSQL cannot serve (also in the block).
        """
        try:
            async with asyncio.timeout(self._timeout):
                if not self._ready:
                    await self._ensure_table()
                yield await self._database.get()
        except UNAVAILABLE as exc:
            raise unavailable(exc, self._what) from exc

    async def call(self, method: str, sql: str, *args: Any) -> Any:
        """Run ``connection.<method>(sql, *args)``, first use's setup included, in one deadline.

        Raises:
            StoreUnavailable: Once closed, or if PostgreSQL cannot serve.
        """
        async with self.pool() as pool:
            return await self._database.calls.run(pool, method, sql, *args)

    async def transact(self, work: Callable[[Any], Awaitable[_T]]) -> _T:
        """Return ``await work(connection)`` run in one transaction, as :meth:`call` runs one.

        See ``PooledCalls.transact``.
        """
        async with self.pool() as pool:
            return await self._database.calls.transact(pool, work)

    async def rowcount(self, sql: str, *args: Any) -> int:
        """Run one statement; return how many rows it changed (from its status, ``DELETE 3``)."""
        status = await self.call("execute", sql, *args)
        return int(status.rpartition(" ")[2])

    async def aclose(self) -> None:
        """Refuse further statements; close the pool if the view owns it."""
        async with self._lock:
            self._closed, self._ready = True, False
        if self._owned:
            self._owned = False
            await self._database.aclose()
