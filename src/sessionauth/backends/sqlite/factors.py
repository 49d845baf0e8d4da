"""The second-factor store on SQLite (see :mod:`sessionauth.backends.sql_factors`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sessionauth.backends.sql_factors import SQLFactorStore, schema, statements, tables
from sessionauth.backends.sqlite.files import SQLiteDatabase, Transaction
from sessionauth.backends.sqlite.table_guard import TableGuard
from sessionauth.stores.factors import DEFAULT_FACTOR_TABLE

__all__ = ["SQLiteFactorStore"]


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
        self._guard = TableGuard(
            database,
            schema=schema(names, blob="BLOB", integer="INTEGER", real="REAL"),
            what="SQLite factor store",
            owned=owned,
        )
        self._sql = statements(names, "?")

    async def _rows(self, name: str, *params: Any) -> list[Sequence[Any]]:
        return list(await self._guard.fetch(self._sql[name], params))

    async def _transaction(self, steps: Sequence[tuple[str, tuple[Any, ...]]]) -> None:
        async def work(transaction: Transaction) -> None:
            for name, params in steps:
                await transaction.fetch(self._sql[name], params)

        await self._guard.transaction(work)

    async def aclose(self) -> None:
        """Stop serving; close the connection if this store owns it."""
        await self._guard.aclose()
