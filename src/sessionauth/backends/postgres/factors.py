"""The second-factor store on PostgreSQL (see :mod:`sessionauth.backends.sql_factors`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sessionauth.backends.postgres.pool import PostgresPool
from sessionauth.backends.postgres.table_guard import TableGuard
from sessionauth.backends.sql_factors import SQLFactorStore, schema, statements, tables
from sessionauth.stores.factors import DEFAULT_FACTOR_TABLE

__all__ = ["PostgresFactorStore"]


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
        names = tables(table, database.timeout, schemas=True)
        # The last table created is the one checked: all three exist once it does.
        passkeys = names["passkeys"]
        self._guard = TableGuard(
            database,
            table=passkeys,
            quoted=passkeys,
            schema=schema(names, blob="bytea", integer="bigint", real="double precision"),
            what="PostgreSQL factor store",
            owned=owned,
        )
        self._sql = statements(names, "$")

    async def _rows(self, name: str, *params: Any) -> list[Sequence[Any]]:
        return list(await self._guard.call("fetch", self._sql[name], *params))

    async def _transaction(self, steps: Sequence[tuple[str, tuple[Any, ...]]]) -> None:
        async def work(connection: Any) -> None:
            for name, params in steps:
                await connection.execute(self._sql[name], *params)

        await self._guard.transact(work)

    async def aclose(self) -> None:
        """Stop serving; close the pool if this store owns it."""
        await self._guard.aclose()
