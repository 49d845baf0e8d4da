"""The single-use token store on SQLite (see :mod:`sessionauth.backends.sql_tokens`)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

import aiosqlite

from sessionauth.backends.sql_tokens import (
    DEFAULT_TABLE,
    names,
    record_of,
    schema,
    statements,
)
from sessionauth.backends.sqlite.files import SQLiteDatabase
from sessionauth.errors import StoreUnavailable
from sessionauth.policy import Clock, system_clock
from sessionauth.stores.tokens import TokenRecord, TokenStore

__all__ = ["SQLiteTokenStore"]

_WHAT = "SQLite token store"


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
        self._database = database
        self._owned = owned
        self._clock = clock
        self._lock = asyncio.Lock()
        self._ready = False
        self._closed = False
        self._schema = schema(
            t,
            index,
            "token_hash TEXT PRIMARY KEY NOT NULL, user_id TEXT NOT NULL, purpose TEXT NOT NULL,"
            " binding TEXT NOT NULL, expires REAL NOT NULL, payload TEXT",
            " WITHOUT ROWID",
        )
        self._sql = statements(t, "?")

    async def _connection(self) -> aiosqlite.Connection:
        if self._ready:
            return await self._database.connection()
        async with self._lock:
            if self._closed:
                raise StoreUnavailable("the SQLite token store is closed")
            db = await self._database.connection()
            if not self._ready:
                for statement in self._schema:
                    await self._database.run(db.execute_fetchall(statement), _WHAT)
                self._ready = True
            return db

    async def _fetch(self, name: str, *params: Any) -> Iterable[Sequence[Any]]:
        db = await self._connection()
        return await self._database.run(db.execute_fetchall(self._sql[name], params), _WHAT)

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
        db = await self._connection()
        cutoff = self._clock() if now is None else now
        cursor = await self._database.run(db.execute(self._sql["purge"], (cutoff,)), _WHAT)
        return int(cursor.rowcount)

    async def aclose(self) -> None:
        """Stop serving; close the connection if this store owns it."""
        async with self._lock:
            self._closed, self._ready = True, False
        if self._owned:
            self._owned = False
            await self._database.aclose()
