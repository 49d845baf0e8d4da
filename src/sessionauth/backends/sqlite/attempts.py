"""The login-attempt counter on SQLite (see :mod:`sessionauth.backends.sql_attempts`)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

from sessionauth.backends.sql_attempts import DEFAULT_TABLE, check_options, schema, statements
from sessionauth.backends.sqlite.files import SQLiteDatabase
from sessionauth.backends.sqlite.table_guard import TableGuard
from sessionauth.errors import ConfigurationError
from sessionauth.policy import Clock, system_clock
from sessionauth.stores.attempts import AttemptCounter
from sessionauth.stores.base import DEFAULT_TIMEOUT

__all__ = ["SQLiteCounter"]


class SQLiteCounter(AttemptCounter):
    """Counts in a SQLite table, through aiosqlite's worker thread.

    The database is opened (WAL mode, the table created if missing) on first use. One
    connection serialises every statement, and each ``reserve`` is a single statement, so
    counts are exact across tasks and across processes sharing the file.

    Args:
        path: The database file (``:memory:`` for a private one); its directory is created.
            The counter owns this connection and closes it in :meth:`aclose`.
        database: A backend's shared connection instead of ``path`` (closed by
            :meth:`aclose` only if ``owned``).
        clock: The time source deciding windows.
        timeout: Seconds an operation (and the busy wait on a locked file) may take.
        table: The table's name.
        owned: Whether :meth:`aclose` closes ``database``.

    Raises:
        ConfigurationError: For an invalid table name or timeout, or not exactly one of
            ``path`` and ``database``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        database: SQLiteDatabase | None = None,
        clock: Clock = system_clock,
        timeout: float = DEFAULT_TIMEOUT,
        table: str = DEFAULT_TABLE,
        owned: bool = False,
    ):
        t, index = check_options(table, timeout, schemas=False)
        if database is None:
            database = SQLiteDatabase(None if path is None else os.fspath(path), timeout=timeout)
            owned = True
        elif path is not None:
            raise ConfigurationError("give the SQLite counter a path or a database, not both")
        self._guard = TableGuard(
            database,
            schema=schema(
                t,
                index,
                '"key" TEXT PRIMARY KEY NOT NULL, count INTEGER NOT NULL, reset_at REAL NOT NULL',
                " WITHOUT ROWID",
            ),
            what="SQLite attempt counter",
            owned=owned,
        )
        self._clock = clock
        self._sql = statements(t, "?")

    async def _fetch(self, name: str, *params: Any) -> Iterable[Sequence[Any]]:
        return await self._guard.fetch(self._sql[name], params)

    async def reserve(self, key: str, window: float, limit: int) -> tuple[bool, int, float]:
        """Take one attempt of ``key`` in one guarded upsert (see the module docstring)."""
        now = self._clock()
        for count, reset_at in await self._fetch("reserve", key, now + window, now, limit):
            return True, int(count), float(reset_at)
        return (False, *await self.count(key))

    async def release(self, key: str, reset_at: float) -> None:
        """Give back one attempt of the window ending at ``reset_at``."""
        await self._fetch("release", key, reset_at)

    async def count(self, key: str) -> tuple[int, float]:
        """Return ``(count, reset_at)``, or ``(0, now)`` once the window is over."""
        now = self._clock()
        for count, reset_at in await self._fetch("count", key, now):
            return int(count), float(reset_at)
        return 0, now

    async def reset(self, key: str) -> None:
        """Delete ``key``'s row."""
        await self._fetch("reset", key)

    async def purge(self, now: float | None = None) -> int:
        """Delete rows whose window ended at or before ``now``; return how many."""
        cutoff = self._clock() if now is None else now
        return await self._guard.rowcount(self._sql["purge"], (cutoff,))

    async def aclose(self) -> None:
        """Stop counting; close the connection if this counter owns it."""
        await self._guard.aclose()
