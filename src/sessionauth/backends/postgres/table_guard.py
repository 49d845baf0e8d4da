"""One PostgreSQL table of a view: created on first use, refused once closed, one deadline.

The attempt counter and the single-use token store keep one table each on a backend's shared
pool, and need the same guard around every statement: the table created once before the
first (setup and statement under one deadline), ``StoreUnavailable`` once the view is closed
or when PostgreSQL cannot serve (:data:`~sessionauth.backends.postgres.calls.UNAVAILABLE`),
and the pool closed only by the view that owns it. :class:`TableGuard` is that guard, once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sessionauth.backends.postgres.calls import UNAVAILABLE, unavailable
from sessionauth.backends.postgres.pool import PostgresPool
from sessionauth.errors import StoreUnavailable

__all__ = ["TableGuard"]


class TableGuard:
    """The connection and outage guard of one PostgreSQL view.

    Args:
        database: The pool the view runs on.
        table: The table's name as given (``schema.table`` allowed), for the existence check.
        quoted: The same, quoted for SQL.
        schema: The statements creating the table and its indexes.
        what: The view's name in messages (``"PostgreSQL token store"``).
        owned: Whether :meth:`aclose` closes ``database``.
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
    ):
        self._database = database
        self._table, self._quoted, self._schema = table, quoted, schema
        self._what = what
        self._owned = owned
        self._timeout = database.timeout
        self._lock = asyncio.Lock()
        self._ready = False
        self._closed = False

    async def _ensure_table(self) -> None:
        async with self._lock:
            if self._closed:
                raise StoreUnavailable(f"the {self._what} is closed")
            if not self._ready:
                await self._database.create_tables(self._table, self._quoted, self._schema)
                self._ready = True

    async def call(self, method: str, sql: str, *args: Any) -> Any:
        """Run ``connection.<method>(sql, *args)``, first use's setup included, in one deadline.

        Raises:
            StoreUnavailable: Once closed, or if PostgreSQL cannot serve.
        """
        try:
            async with asyncio.timeout(self._timeout):
                if not self._ready:
                    await self._ensure_table()
                return await self._database.run(method, sql, *args)
        except UNAVAILABLE as exc:
            raise unavailable(exc, self._what) from exc

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
