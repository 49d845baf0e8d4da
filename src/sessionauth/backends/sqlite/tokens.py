"""The single-use token store on SQLite (see :mod:`sessionauth.backends.sql_tokens`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sessionauth.backends.sql_tokens import (
    DEFAULT_TABLE,
    names,
    record_of,
    schema,
    statements,
)
from sessionauth.backends.sqlite.files import SQLiteDatabase
from sessionauth.backends.sqlite.table_guard import TableGuard
from sessionauth.policy import Clock, system_clock
from sessionauth.stores.tokens import TokenRecord, TokenStore

__all__ = ["SQLiteTokenStore"]


class SQLiteTokenStore(TokenStore):
    """Token records in a SQLite table, on a backend's shared connection.

    The table is created on first use. One connection serialises every statement, and each
    ``take`` is one ``DELETE … RETURNING``, so one take wins across tasks and across processes
    sharing the file.

    Args:
        database: The backend's connection (closed by :meth:`aclose` only if ``owned``).
        clock: The time source deciding expiry.
        table: The table's name.
        owned: Whether :meth:`aclose` closes ``database``.

    Raises:
        ConfigurationError: For an invalid table name.
    """

    def __init__(
        self,
        *,
        database: SQLiteDatabase,
        clock: Clock = system_clock,
        table: str = DEFAULT_TABLE,
        owned: bool = False,
    ):
        t, index = names(table, database.timeout, schemas=False)
        self._table = table
        self._guard = TableGuard(
            database,
            schema=schema(
                t,
                index,
                "token_hash TEXT PRIMARY KEY NOT NULL, user_id TEXT NOT NULL,"
                " purpose TEXT NOT NULL, binding TEXT NOT NULL, expires REAL NOT NULL,"
                " payload TEXT",
                " WITHOUT ROWID",
            ),
            what="SQLite token store",
            owned=owned,
        )
        self._clock = clock
        self._sql = statements(t, "?")

    async def _fetch(self, name: str, *params: Any) -> Iterable[Sequence[Any]]:
        return await self._guard.fetch(self._sql[name], params)

    @property
    def table(self) -> str:
        """The table's name, as given: where to look for the records."""
        return self._table

    async def add(self, key: str, record: TokenRecord) -> None:
        """Insert the record."""
        await self._fetch(
            "add",
            key,
            record.user_id,
            record.purpose,
            record.binding,
            record.expires,
            record.payload,
        )

    async def take(self, key: str, *, user_id: str | None = None) -> TokenRecord | None:
        """Delete and return the live record under ``key`` in one statement."""
        for row in await self._fetch("take", key, user_id):
            record = record_of(row)
            return record if record.expires > self._clock() else None
        return None

    async def purge_expired(self, now: float | None = None) -> int:
        """Delete expired rows; return how many."""
        cutoff = self._clock() if now is None else now
        return await self._guard.rowcount(self._sql["purge"], (cutoff,))

    async def aclose(self) -> None:
        """Stop serving; close the connection if this store owns it."""
        await self._guard.aclose()
