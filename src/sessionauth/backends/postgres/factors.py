"""The second-factor store on PostgreSQL (see :mod:`sessionauth.backends.sql_factors`)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sessionauth.backends.postgres.calls import UNAVAILABLE, unavailable
from sessionauth.backends.postgres.pool import PostgresPool
from sessionauth.backends.sql_factors import SQLFactorStore, schema, statements, tables
from sessionauth.errors import StoreUnavailable
from sessionauth.stores.factors import DEFAULT_FACTOR_TABLE

__all__ = ["PostgresFactorStore"]

_WHAT = "PostgreSQL factor store"


class PostgresFactorStore(SQLFactorStore):
    """Factors in three PostgreSQL tables, on a backend's shared pool.

    The tables are created on first use. Each deciding operation is one statement: the row
    lock serialises concurrent ones, and under READ COMMITTED the second re-checks its
    ``WHERE`` against the row the first committed, so it finds nothing left to win.

    Args:
        database: The backend's pool (closed by :meth:`aclose` only if ``owned``).
        table: The prefix of the tables' names, optionally ``schema.prefix``.
        owned: Whether :meth:`aclose` closes ``database``.

    Raises:
        ConfigurationError: For an invalid table name.
    """

    def __init__(
        self, *, database: PostgresPool, table: str = DEFAULT_FACTOR_TABLE, owned: bool = False
    ):
        self._names = tables(table, database.timeout, schemas=True)
        self._database = database
        self._owned = owned
        self._timeout = database.timeout
        self._schema = schema(self._names, blob="bytea", integer="bigint", real="double precision")
        self._sql = statements(self._names, "$")
        self._lock = asyncio.Lock()
        self._ready = False
        self._closed = False

    async def _ensure_tables(self) -> None:
        async with self._lock:
            if self._closed:
                raise StoreUnavailable("the PostgreSQL factor store is closed")
            if not self._ready:
                # The last table created is the one checked: all three exist once it does.
                passkeys = self._names["passkeys"]
                await self._database.create_tables(passkeys, passkeys, self._schema)
                self._ready = True

    async def _rows(self, name: str, *params: Any) -> list[Sequence[Any]]:
        try:
            async with asyncio.timeout(self._timeout):
                if not self._ready:
                    await self._ensure_tables()
                return list(await self._database.run("fetch", self._sql[name], *params))
        except UNAVAILABLE as exc:
            raise unavailable(exc, _WHAT) from exc

    async def _transaction(self, steps: Sequence[tuple[str, tuple[Any, ...]]]) -> None:
        async def work(connection: Any) -> None:
            for name, params in steps:
                await connection.execute(self._sql[name], *params)

        try:
            async with asyncio.timeout(self._timeout):
                if not self._ready:
                    await self._ensure_tables()
                await self._database.calls.transact(await self._database.get(), work)
        except UNAVAILABLE as exc:
            raise unavailable(exc, _WHAT) from exc

    async def aclose(self) -> None:
        """Stop serving; close the pool if this store owns it."""
        async with self._lock:
            self._closed, self._ready = True, False
        if self._owned:
            self._owned = False
            await self._database.aclose()
