"""A user store in SQLite, through aiosqlite so queries never block the event loop.

One connection serves the whole process: aiosqlite runs its queries in order on a dedicated
thread, and every operation here is a single autocommitted statement, so nothing interleaves
badly. WAL mode lets other processes (the CLI, a second worker) read while one writes, and
``busy_timeout`` makes a writer wait for a lock instead of failing at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from sessionauth.auth.sql_users import SQLUserStore
from sessionauth.auth.users import DEFAULT_TABLE, DEFAULT_TIMEOUT, sql_table_name
from sessionauth.errors import StoreUnavailable
from sessionauth.policy import Clock, system_clock
from sessionauth.stores.sqlite_files import (
    BUGS,
    DatabaseFile,
    database_path,
    open_sqlite,
    unavailable,
)

__all__ = ["SQLiteUserStore"]


class SQLiteUserStore(SQLUserStore):
    """Keeps users in one SQLite table.

    Build it with :meth:`open` or :meth:`from_url` (the store owns and closes the connection)
    or :meth:`with_connection` (the caller does).

    Args:
        connection: An open aiosqlite connection in autocommit mode.
        table: The table name; a plain identifier.
        clock: Time source for ``created_at``.
        timeout: Seconds an operation may take before raising ``StoreUnavailable``.
        owns_connection: Whether :meth:`aclose` closes ``connection``.
    """

    _duplicate = sqlite3.IntegrityError  # only the email's UNIQUE constraint can fail

    def __init__(
        self,
        connection: aiosqlite.Connection,
        *,
        table: str = DEFAULT_TABLE,
        clock: Clock = system_clock,
        timeout: float = DEFAULT_TIMEOUT,
        owns_connection: bool = False,
    ):
        super().__init__(table=table, clock=clock, timeout=timeout, parameter=lambda n: f"?{n}")
        self._db = connection
        self._owns_connection = owns_connection
        self._file: DatabaseFile | None = None

    @classmethod
    async def with_connection(
        cls,
        connection: aiosqlite.Connection,
        *,
        table: str = DEFAULT_TABLE,
        clock: Clock = system_clock,
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - configures the store
    ) -> SQLiteUserStore:
        """Return a store on the caller's connection (left open by ``aclose``), table created."""
        store = cls(connection, table=table, clock=clock, timeout=timeout)
        await store._create_schema()
        return store

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        table: str = DEFAULT_TABLE,
        clock: Clock = system_clock,
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - configures the store
    ) -> SQLiteUserStore:
        """Open (or create) the database file at ``path`` in WAL mode and create the table.

        Raises:
            StoreUnavailable: If the file cannot be opened or created.
        """
        sql_table_name(table)  # a bad name fails before any file is touched
        connection = await open_sqlite(str(path), timeout=timeout)
        store = cls(connection, table=table, clock=clock, timeout=timeout, owns_connection=True)
        store._file = DatabaseFile(str(path), "user database")
        try:
            async with store._guard():
                await connection.execute("PRAGMA journal_mode=WAL")
                await connection.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            await store._create_schema()
            await store._file.remember()
        except BaseException:
            await connection.close()
            raise
        return store

    @classmethod
    async def from_url(
        cls,
        url: str,
        *,
        table: str = DEFAULT_TABLE,
        clock: Clock = system_clock,
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - configures the store
    ) -> SQLiteUserStore:
        """Open the database a ``sqlite:///path`` URL names; see :meth:`open`."""
        return await cls.open(database_path(url), table=table, clock=clock, timeout=timeout)

    @contextlib.asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        # "database is locked", disk I/O errors, a full disk, a file that is not a database:
        # the database is there in principle but not usable now, which is what 503 means.
        try:
            async with asyncio.timeout(self._timeout):
                yield
        except TimeoutError as exc:
            raise StoreUnavailable("the user database did not answer in time") from exc
        except BUGS:
            raise  # the email's UNIQUE constraint among them: DuplicateUser
        except sqlite3.DatabaseError as exc:
            raise unavailable(exc, "the user database") from exc

    async def _fetch(self, sql: str, *params: Any) -> Sequence[Iterable[Any]]:
        # execute_fetchall steps the statement to completion, so an INSERT/UPDATE … RETURNING
        # is committed before this returns (a half-read cursor would keep it pending).
        async with self._guard():
            return list(await self._db.execute_fetchall(sql, params))

    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless the database answers, from the file it opened.

        A store that opened its own file also fails once that file was deleted or replaced
        (see :class:`~sessionauth.stores.sqlite_files.DatabaseFile`).
        """
        await super().ping()
        if self._file is not None:
            await self._file.check()

    async def _create_schema(self) -> None:
        async with self._guard():
            await self._db.execute(
                f"""CREATE TABLE IF NOT EXISTS {self._table} (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    email TEXT NOT NULL,
                    role TEXT NOT NULL,
                    password_hash TEXT NOT NULL,
                    disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
                    created_at REAL NOT NULL,
                    CONSTRAINT {self._table}_email_key UNIQUE (email)
                )"""
            )

    async def aclose(self) -> None:
        """Close the connection if this store opened it."""
        if self._owns_connection:
            await self._db.close()
