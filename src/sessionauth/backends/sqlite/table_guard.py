"""One SQLite table (or a few) of a view: created on first use, refused once closed.

The attempt counter and the single-use token store keep one table each on a backend's shared
connection, and need the same guard around every statement: the schema run once before the
first, ``StoreUnavailable`` once the view is closed, each statement through
:meth:`~sessionauth.backends.sqlite.files.SQLiteDatabase.run` (the deadline and the error
table), and the connection closed only by the view that owns it. :class:`TableGuard` is
that guard, once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

import aiosqlite

from sessionauth.backends.sqlite.files import SQLiteDatabase
from sessionauth.errors import StoreUnavailable

__all__ = ["TableGuard"]


class TableGuard:
    """The connection and outage guard of one SQLite view.

    Args:
        database: The connection the view runs on.
        schema: The statements creating the view's table and indexes (``IF NOT EXISTS``).
        what: The view's name in messages (``"SQLite token store"``).
        owned: Whether :meth:`aclose` closes ``database``.
    """

    def __init__(self, database: SQLiteDatabase, *, schema: Sequence[str], what: str, owned: bool):
        self._database = database
        self._schema = schema
        self._what = what
        self._owned = owned
        self._lock = asyncio.Lock()
        self._ready = False
        self._closed = False

    async def connection(self) -> aiosqlite.Connection:
        """Return the connection, the table created on first use.

        Raises:
            StoreUnavailable: Once closed, or if the database fails.
        """
        if self._ready:
            return await self._database.connection()
        async with self._lock:
            if self._closed:
                raise StoreUnavailable(f"the {self._what} is closed")
            db = await self._database.connection()
            if not self._ready:
                for statement in self._schema:
                    await self._database.run(db.execute_fetchall(statement), self._what)
                self._ready = True
            return db

    async def fetch(self, sql: str, params: Sequence[Any]) -> Iterable[Sequence[Any]]:
        """Run one statement; return its rows."""
        db = await self.connection()
        return await self._database.run(db.execute_fetchall(sql, params), self._what)

    async def rowcount(self, sql: str, params: Sequence[Any]) -> int:
        """Run one statement; return how many rows it changed."""
        db = await self.connection()
        cursor = await self._database.run(db.execute(sql, params), self._what)
        return int(cursor.rowcount)

    async def aclose(self) -> None:
        """Refuse further statements; close the connection if the view owns it."""
        async with self._lock:
            self._closed, self._ready = True, False
        if self._owned:
            self._owned = False
            await self._database.aclose()
