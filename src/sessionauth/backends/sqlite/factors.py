"""The second-factor store on SQLite (see :mod:`sessionauth.backends.sql_factors`)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sessionauth.backends.sql_factors import SQLFactorStore, schema, statements, tables
from sessionauth.backends.sqlite.files import SQLiteDatabase, Transaction
from sessionauth.errors import StoreUnavailable
from sessionauth.stores.factors import DEFAULT_FACTOR_TABLE

__all__ = ["SQLiteFactorStore"]

_WHAT = "SQLite factor store"


class SQLiteFactorStore(SQLFactorStore):
    """Factors in three SQLite tables, on a backend's shared connection.

    The tables are created on first use. Each deciding operation is one statement, and the
    connection runs one at a time (and the file one writer at a time), so they are atomic
    across tasks and processes.

    Args:
        database: The backend's connection (closed by :meth:`aclose` only if ``owned``).
        table: The prefix of the tables' names.
        owned: Whether :meth:`aclose` closes ``database``.

    Raises:
        ConfigurationError: For an invalid table name.
    """

    def __init__(
        self, *, database: SQLiteDatabase, table: str = DEFAULT_FACTOR_TABLE, owned: bool = False
    ):
        names = tables(table, database.timeout, schemas=False)
        self._database = database
        self._owned = owned
        self._schema = schema(names, blob="BLOB", integer="INTEGER", real="REAL")
        self._sql = statements(names, "?")
        self._lock = asyncio.Lock()
        self._ready = False
        self._closed = False

    async def _ensure_tables(self) -> None:
        async with self._lock:
            if self._closed:
                raise StoreUnavailable("the SQLite factor store is closed")
            if not self._ready:
                db = await self._database.connection()
                for statement in self._schema:
                    await self._database.run(db.execute_fetchall(statement), _WHAT)
                self._ready = True

    async def _rows(self, name: str, *params: Any) -> list[Sequence[Any]]:
        if not self._ready:
            await self._ensure_tables()
        db = await self._database.connection()
        return list(await self._database.run(db.execute_fetchall(self._sql[name], params), _WHAT))

    async def _transaction(self, steps: Sequence[tuple[str, tuple[Any, ...]]]) -> None:
        if not self._ready:
            await self._ensure_tables()

        async def work(transaction: Transaction) -> None:
            for name, params in steps:
                await transaction.fetch(self._sql[name], params)

        await self._database.transaction(work, _WHAT)

    async def aclose(self) -> None:
        """Stop serving; close the connection if this store owns it."""
        async with self._lock:
            self._closed, self._ready = True, False
        if self._owned:
            self._owned = False
            await self._database.aclose()
